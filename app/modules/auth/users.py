"""Making an account and changing its password: the one way each is done, whoever asks.

Registration, an admin's `POST /api/admin/users` and `encurta users create` all insert an
account through `insert_user`, so the role rule (the first account of an instance is its
admin) and the email key hold for each; a password set by its owner, by the CLI or by any
later path goes through `store_password`, which ends the account's other sessions.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.modules.auth.admin import ROLES_LOCK
from app.modules.auth.emails import email_key
from app.modules.auth.sessions import end_sessions
from app.modules.auth.tables import users

Role = Literal["admin", "user"]

USER_COLUMNS = [c for c in users.c if c.name not in ("password_hash", "email_key")]


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
