"""What the shortener consumes: an account deleted in auth stops its links; a link deleted
or changed in any replica leaves every replica's cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.bus.outbox import write_outbox
from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkDeleted, LinkUpdated
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.owners import lock_owner
from app.modules.shortener.tables import deleted_owners, urls


def on_user_deleted(
    evict: Callable[[str], None],
) -> Callable[[AsyncConnection, Sequence[UserDeleted]], Awaitable[None]]:
    async def handle(conn: AsyncConnection, events: Sequence[UserDeleted]) -> None:
        """The owner's links answer 410 from now on; each gets a `link_deleted` event, so
        analytics and other replicas hear of it like of any deletion."""
        owners = sorted({event.user_id for event in events})
        for owner in owners:
            await lock_owner(conn, owner)
        await conn.execute(
            insert(deleted_owners)
            .values([{"owner_id": owner} for owner in owners])
            .on_conflict_do_nothing(index_elements=["owner_id"])
        )
        rows = (
            await conn.execute(
                update(urls)
                .where(urls.c.owner_id.in_(owners), urls.c.deleted_at.is_(None))
                .values(deleted_at=func.now())
                .returning(urls.c.id, urls.c.code, urls.c.owner_id)
            )
        ).all()
        await write_outbox(
            conn, [LinkDeleted(code=r.code, link_id=r.id, owner_id=r.owner_id) for r in rows]
        )
        for row in rows:
            # Before the commit: a redirect in between may cache the old state again, for
            # at most the cache TTL.
            evict(row.code)

    return handle


E = TypeVar("E", LinkDeleted, LinkUpdated)


def evict_changed(cache: LinkCache) -> Callable[[Sequence[E]], Awaitable[None]]:
    async def handle(events: Sequence[E]) -> None:
        """Every replica drops a deleted or changed link from its cache, wherever it was
        deleted or changed: its next redirect reads it again."""
        for event in events:
            cache.evict(event.code)

    return handle
