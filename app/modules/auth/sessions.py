"""Ending an account's sessions, and telling every module who may still call.

Every change that must lock someone out (an admin disabling the account, a password
changed by its owner or an admin, the account deleted) goes through `end_sessions`; every
change of what an account may do (its role, enabling it again) through `access_changed`.
Both write auth's own access list and an `access_changed` event in the caller's
transaction, so every module's Gate follows within the bus's delivery time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.bus.outbox import write_outbox
from app.contracts.auth import AccessChanged
from app.kernel.access import AccessList
from app.modules.auth.tables import access_accounts, refresh_tokens, users

_ACCESS = AccessList()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def end_sessions(
    conn: AsyncConnection, user_id: UUID, *, keep_family: UUID | None = None
) -> None:
    """Revoke the account's refresh tokens and refuse its access tokens issued until now;
    `keep_family`: the caller's own session, whose refresh token a password change keeps."""
    condition = (refresh_tokens.c.user_id == user_id) & refresh_tokens.c.revoked_at.is_(None)
    if keep_family is not None:
        condition &= refresh_tokens.c.family_id != keep_family
    await conn.execute(update(refresh_tokens).where(condition).values(revoked_at=func.now()))
    await access_changed(conn, user_id, end_tokens=True)


async def access_changed(conn: AsyncConnection, user_id: UUID, *, end_tokens: bool = False) -> None:
    """Publish the account's state as it stands in this transaction (a deleted account:
    inactive). `end_tokens`: its access tokens issued until now stop counting."""
    now = datetime.now(UTC)
    account = (
        await conn.execute(select(users.c.is_active, users.c.role).where(users.c.id == user_id))
    ).one_or_none()
    before = (
        await conn.execute(
            select(access_accounts.c.tokens_after).where(access_accounts.c.user_id == user_id)
        )
    ).scalar_one_or_none()
    event = AccessChanged(
        user_id=user_id,
        active=bool(account and account.is_active),
        role="admin" if account and account.role == "admin" else "user",
        tokens_after=now if end_tokens else (before or _EPOCH),
        changed_at=now,
    )
    await _ACCESS.account_changed(
        conn,
        user_id=user_id,
        active=event.active,
        role=event.role,
        tokens_after=event.tokens_after,
        changed_at=event.changed_at,
    )
    await write_outbox(conn, [event])
