"""The events analytics consumes, each handled a batch at a time.

Every handler runs inside the consumer's batch transaction (app.bus.inbox), next to the
insert of the events' ids into `processed_events`: a batch counts once or not at all.
Clicks are the exception that proves it: their table is their inbox (a click's id is its
primary key, and the rollups grow only by the clicks actually inserted), so their ids are
not recorded twice.
Events of different types arrive in any order (over Kafka they are different topics), so
each handler copes with the others not having arrived yet: clicks before link_created
count, a link_deleted before its link_created leaves a tombstone the creation keeps, and
a link_updated before its link_created keeps what it set (versions order a link's states).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ARRAY, Text, any_, bindparam, delete, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted, LinkUpdated
from app.modules.analytics import tables
from app.modules.analytics.locks import lock_codes, lock_owners
from app.modules.analytics.rollups import STORE_CLICKS, click_parameters

# A link_updated that came first (version > 1) keeps what it set: the creation fills in
# only what an update does not carry.
_UPSERT_CREATIONS = text(
    """
    INSERT INTO url_creations
        (code, link_id, owner_id, target_url, created_at, expires_at, title, deleted_at)
    SELECT b.code, b.link_id,
           CASE WHEN gone.owner_id IS NULL THEN b.owner_id END,
           CASE WHEN gone.owner_id IS NULL THEN b.target_url END,
           b.created_at, b.expires_at,
           CASE WHEN gone.owner_id IS NULL THEN b.title END,
           CASE WHEN gone.owner_id IS NOT NULL THEN now() END
    FROM unnest(
        CAST(:codes AS text[]), CAST(:link_ids AS uuid[]), CAST(:owner_ids AS uuid[]),
        CAST(:target_urls AS text[]), CAST(:created_at AS timestamptz[]),
        CAST(:expires_at AS timestamptz[]), CAST(:titles AS text[])
    ) AS b(code, link_id, owner_id, target_url, created_at, expires_at, title)
    LEFT JOIN deleted_owners AS gone ON gone.owner_id = b.owner_id
    ON CONFLICT (code) DO UPDATE SET
        link_id = excluded.link_id,
        owner_id = excluded.owner_id,
        target_url = CASE WHEN url_creations.deleted_at IS NOT NULL THEN NULL
                          WHEN url_creations.version > 1 THEN url_creations.target_url
                          ELSE excluded.target_url END,
        title = CASE WHEN url_creations.deleted_at IS NOT NULL THEN NULL
                     WHEN url_creations.version > 1 THEN url_creations.title
                     ELSE excluded.title END,
        created_at = excluded.created_at,
        expires_at = CASE WHEN url_creations.version > 1 THEN url_creations.expires_at
                          ELSE excluded.expires_at END,
        deleted_at = coalesce(url_creations.deleted_at, excluded.deleted_at)
    RETURNING code, deleted_at
    """
)
# The newest state of each link, unless a newer one is here already. A tombstone keeps no
# target or title; a link of an account already gone becomes one.
_UPSERT_UPDATES = text(
    """
    INSERT INTO url_creations
        (code, link_id, owner_id, target_url, expires_at, title, version, deleted_at)
    SELECT b.code, b.link_id,
           CASE WHEN gone.owner_id IS NULL THEN b.owner_id END,
           CASE WHEN gone.owner_id IS NULL THEN b.target_url END,
           b.expires_at,
           CASE WHEN gone.owner_id IS NULL THEN b.title END,
           b.version,
           CASE WHEN gone.owner_id IS NOT NULL THEN now() END
    FROM unnest(
        CAST(:codes AS text[]), CAST(:link_ids AS uuid[]), CAST(:owner_ids AS uuid[]),
        CAST(:target_urls AS text[]), CAST(:expires_at AS timestamptz[]),
        CAST(:titles AS text[]), CAST(:versions AS integer[])
    ) AS b(code, link_id, owner_id, target_url, expires_at, title, version)
    LEFT JOIN deleted_owners AS gone ON gone.owner_id = b.owner_id
    ON CONFLICT (code) DO UPDATE SET
        target_url = CASE WHEN url_creations.deleted_at IS NULL THEN excluded.target_url END,
        title = CASE WHEN url_creations.deleted_at IS NULL THEN excluded.title END,
        expires_at = excluded.expires_at,
        version = excluded.version
    WHERE url_creations.version < excluded.version
    RETURNING code, deleted_at
    """
)
_TOMBSTONE = text(
    """
    INSERT INTO url_creations (code, link_id, owner_id, deleted_at)
    SELECT b.code, b.link_id, CASE WHEN gone.owner_id IS NULL THEN b.owner_id END, now()
    FROM unnest(
        CAST(:codes AS text[]), CAST(:link_ids AS uuid[]), CAST(:owner_ids AS uuid[])
    ) AS b(code, link_id, owner_id)
    LEFT JOIN deleted_owners AS gone ON gone.owner_id = b.owner_id
    ON CONFLICT (code) DO UPDATE SET
        deleted_at = coalesce(url_creations.deleted_at, excluded.deleted_at),
        target_url = NULL
    """
)
_FORGET_OWNERS = text(
    """
    INSERT INTO deleted_owners (owner_id)
    SELECT * FROM unnest(CAST(:owners AS uuid[])) ON CONFLICT DO NOTHING
    """
)
_CODES_OF_OWNERS = text(
    "SELECT code FROM url_creations WHERE owner_id = ANY(CAST(:owners AS uuid[]))"
)
# The owner's links stay as anonymous tombstones, so their late clicks are dropped.
_TOMBSTONE_CODES = text(
    """
    UPDATE url_creations
    SET deleted_at = coalesce(deleted_at, now()), owner_id = NULL, target_url = NULL
    WHERE code = ANY(CAST(:codes AS text[]))
    """
)
_FORGET_DATA = [
    delete(table).where(table.c.code == any_(bindparam("codes", type_=ARRAY(Text))))
    for table in (tables.clicks, tables.visitors, tables.url_stats, tables.url_dimension_stats)
]


async def on_link_created(conn: AsyncConnection, events: Sequence[LinkCreated]) -> None:
    """Learn the link's owner. A link already tombstoned, or of an account already gone,
    stays (or becomes) a tombstone without its target, and its clicks are forgotten."""
    latest = list({event.code: event for event in events}.values())
    await lock_owners(conn, (e.owner_id for e in latest if e.owner_id), exclusive=False)
    await lock_codes(conn, (e.code for e in latest), exclusive=True)
    rows = await conn.execute(
        _UPSERT_CREATIONS,
        {
            "codes": [e.code for e in latest],
            "link_ids": [e.link_id for e in latest],
            "owner_ids": [e.owner_id for e in latest],
            "target_urls": [e.target_url for e in latest],
            "created_at": [e.created_at for e in latest],
            "expires_at": [e.expires_at for e in latest],
            "titles": [e.title for e in latest],
        },
    )
    await _forget_data(conn, [row.code for row in rows if row.deleted_at is not None])


async def on_link_updated(conn: AsyncConnection, events: Sequence[LinkUpdated]) -> None:
    """Follow the link's changes (its target, expiry and title), the newest version only."""
    latest = list({e.code: e for e in sorted(events, key=lambda e: e.version)}.values())
    await lock_owners(conn, (e.owner_id for e in latest if e.owner_id), exclusive=False)
    await lock_codes(conn, (e.code for e in latest), exclusive=True)
    rows = await conn.execute(
        _UPSERT_UPDATES,
        {
            "codes": [e.code for e in latest],
            "link_ids": [e.link_id for e in latest],
            "owner_ids": [e.owner_id for e in latest],
            "target_urls": [e.target_url for e in latest],
            "expires_at": [e.expires_at for e in latest],
            "titles": [e.title for e in latest],
            "versions": [e.version for e in latest],
        },
    )
    await _forget_data(conn, [row.code for row in rows if row.deleted_at is not None])


async def on_link_deleted(conn: AsyncConnection, events: Sequence[LinkDeleted]) -> None:
    """Tombstone the link and forget its clicks; later clicks of it are dropped."""
    latest = list({event.code: event for event in events}.values())
    codes = [e.code for e in latest]
    await lock_codes(conn, codes, exclusive=True)
    await conn.execute(
        _TOMBSTONE,
        {
            "codes": codes,
            "link_ids": [e.link_id for e in latest],
            "owner_ids": [e.owner_id for e in latest],
        },
    )
    await _forget_data(conn, codes)


async def on_user_deleted(conn: AsyncConnection, events: Sequence[UserDeleted]) -> None:
    """Forget every link of the account and what analytics knows of them."""
    owners = sorted({event.user_id for event in events})
    await lock_owners(conn, owners, exclusive=True)
    await conn.execute(_FORGET_OWNERS, {"owners": owners})
    codes = list((await conn.execute(_CODES_OF_OWNERS, {"owners": owners})).scalars())
    await lock_codes(conn, codes, exclusive=True)
    await conn.execute(_TOMBSTONE_CODES, {"codes": codes})
    await _forget_data(conn, codes)


async def on_link_clicked(conn: AsyncConnection, events: Sequence[LinkClicked]) -> None:
    """Store the raw clicks and add the ones stored to the rollups: one statement
    (rollups.py), once the links are locked against their deletion (locks.py)."""
    await lock_codes(conn, (event.code for event in events), exclusive=False)
    await conn.execute(STORE_CLICKS, click_parameters(events))


# helpers


async def _forget_data(conn: AsyncConnection, codes: list[str]) -> None:
    if codes:
        for statement in _FORGET_DATA:
            await conn.execute(statement, {"codes": codes})
