"""Whose rows an operator's command is about (`encurta import|export --owner EMAIL`): an
active account, found by its email; with no email, the instance's only active admin."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.modules.auth.emails import email_key
from app.modules.auth.tables import users


class NoOwner(LookupError):
    """No account can be the owner; the message says why, in one line."""


async def find_owner(engine: AsyncEngine, email: str | None) -> UUID:
    """The owner's id (NoOwner)."""
    active = users.c.is_active
    async with engine.connect() as conn:
        if email is not None:
            found = await conn.execute(
                select(users.c.id, active).where(users.c.email_key == email_key(email))
            )
            row = found.one_or_none()
            if row is None:
                raise NoOwner(f"no account has the email {email}")
            if not row.is_active:
                raise NoOwner(f"the account {email} is disabled")
            owner: UUID = row.id
            return owner
        admins = (
            await conn.execute(select(users.c.id).where(users.c.role == "admin", active).limit(2))
        ).all()
    if len(admins) != 1:
        raise NoOwner(
            "say whose links these are with --owner EMAIL (without it, the instance's only "
            f"active admin owns them, and it has {'none' if not admins else 'several'})"
        )
    only: UUID = admins[0].id
    return only
