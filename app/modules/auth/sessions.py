"""Ending an account's sessions: its refresh tokens now, its access tokens everywhere soon.

Every change that must lock someone out (an admin disabling the account, a password
changed by its owner or an admin, a role taken away) goes through `end_sessions`, so each
has the same effect.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.modules.auth.tables import refresh_tokens


async def end_sessions(
    conn: AsyncConnection, user_id: UUID, *, keep_family: UUID | None = None
) -> None:
    """Revoke the account's refresh tokens, in the caller's transaction; `keep_family`: the
    caller's own session, which a password change keeps."""
    condition = (refresh_tokens.c.user_id == user_id) & refresh_tokens.c.revoked_at.is_(None)
    if keep_family is not None:
        condition &= refresh_tokens.c.family_id != keep_family
    await conn.execute(update(refresh_tokens).where(condition).values(revoked_at=func.now()))
