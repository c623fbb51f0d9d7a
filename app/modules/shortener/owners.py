"""Owners as the shortener knows them: a deleted account creates nothing more."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.modules.shortener.tables import deleted_owners


async def lock_owner(conn: AsyncConnection, owner_id: UUID) -> None:
    """Serialises a link creation with the handling of its owner's deletion."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:owner, 0))"),
        {"owner": str(owner_id)},
    )


async def is_deleted(conn: AsyncConnection, owner_id: UUID) -> bool:
    found = await conn.execute(
        select(deleted_owners.c.owner_id).where(deleted_owners.c.owner_id == owner_id)
    )
    return found.first() is not None
