"""Making an account and changing its password: the one way each is done, whoever asks.

Registration, an admin's `POST /api/admin/users` and `encurta users create` all insert an
account through `insert_user`, so the role rule (the first account of an instance is its
admin) and the email key hold for each; a password set by its owner, by the CLI or by any
later path goes through `store_password`, which ends the account's other sessions. Who
is an admin is decided here too: under ROLES_LOCK, and never leaving accounts without one.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.modules.auth.emails import email_key
from app.modules.auth.sessions import end_sessions
from app.modules.auth.tables import users

Role = Literal["admin", "user"]

# Taken by every change of who is an admin, and by registrations (which pick the role).
ROLES_LOCK = 0x61750001

# An account as its API answers show it: never the hash, nor the lookup key.
USER_COLUMNS = [c for c in users.c if c.name not in ("password_hash", "email_key")]


class LastAdmin(Exception):
    """The change would leave the instance without an active admin."""


async def keep_an_admin(conn: AsyncConnection) -> None:
    """Raise LastAdmin (the caller's transaction rolls back) when accounts are left but no
    active admin among them. (The last account may go: an empty instance is a new one, whose
    first account is its admin.) Every change of who is an admin takes ROLES_LOCK first, so
    these checks take turns."""
    admins = select(users.c.id).where(users.c.role == "admin", users.c.is_active).exists()
    accounts = select(users.c.id).exists()
    if (await conn.execute(select(~admins & accounts))).scalar_one():
        raise LastAdmin


async def active_role(conn: AsyncConnection, user_id: UUID) -> str | None:
    """The role of an active account; None for a disabled or unknown one."""
    return (
        await conn.execute(select(users.c.role).where(users.c.id == user_id, users.c.is_active))
    ).scalar_one_or_none()


class EmailTaken(Exception):
    pass


async def insert_user(
    conn: AsyncConnection,
    email: str,
    password_hash: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    role: Role | None = None,
) -> Any:
    """Insert the account in the caller's transaction and return its row (no hash).

    `role=None`: `admin` for the first account of the instance, `user` for every later one;
    a role given is taken as given, except that the first account is an admin whatever is
    asked. Takes ROLES_LOCK, so two first accounts made at once do not both find the table
    empty. Raises EmailTaken (the caller's transaction is then unusable: roll it back).
    """
    await conn.execute(select(func.pg_advisory_xact_lock(ROLES_LOCK)))
    chosen = (
        "admin" if role == "admin" else case((exists(select(users.c.id)), "user"), else_="admin")
    )
    statement = (
        insert(users)
        .values(
            id=uuid.uuid4(),
            email=email,
            email_key=email_key(email),
            password_hash=password_hash,
            first_name=first_name,
            last_name=last_name,
            role=chosen,
        )
        .on_conflict_do_nothing(index_elements=[users.c.email_key])
        .returning(*USER_COLUMNS)
    )
    row = (await conn.execute(statement)).one_or_none()
    if row is None:
        raise EmailTaken
    return row


async def store_password(
    conn: AsyncConnection, user_id: UUID, password_hash: str, *, keep_family: UUID | None = None
) -> bool:
    """Store the new hash and end the account's sessions (all but `keep_family`), in the
    caller's transaction. False when there is no such account."""
    changed = await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_at=func.now())
    )
    if changed.rowcount == 0:
        return False
    await end_sessions(conn, user_id, keep_family=keep_family)
    return True
