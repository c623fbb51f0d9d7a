"""The transactional outbox: the table, defined once and placed in each producing module's
own database, and the one way to write to it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.contracts.base import IntegrationEvent


def outbox_table(metadata: MetaData) -> Table:
    """Rows written in the same transaction as the state change they announce."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("type", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        # The relay's lease (app.bus.relay): which relay took the row and until when. A
        # lease is taken in a transaction of its own that commits before publishing, so
        # no producer transaction stays open while a consumer works; a relay that dies
        # mid-publish leaves the row to be taken again once the lease has expired.
        Column("claimed_by", Uuid),
        Column("claimed_until", DateTime(timezone=True)),
        Index("outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )


NOTIFY_CHANNEL = "encurta_outbox"

_INSERT = text(
    """
    INSERT INTO outbox (event_id, type, key, payload, occurred_at)
    SELECT * FROM unnest(
        CAST(:event_ids AS uuid[]), CAST(:types AS text[]), CAST(:keys AS text[]),
        CAST(:payloads AS jsonb[]), CAST(:occurred AS timestamptz[])
    )
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)
_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")

# For a writer whose state change and outbox rows fit one statement (the click batcher: one
# round trip per group, on the driver's connection), in PostgreSQL's numbered parameters:
#     WITH inserted AS (INSERT_ROWS) ... SELECT NOTIFY ...
# with `*row_parameters(events)` as $1 to $5; `inserted` yields (event_id, key) per row
# actually inserted.
INSERT_ROWS = """
    INSERT INTO outbox (event_id, type, key, payload, occurred_at)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id, key
"""
NOTIFY = f"pg_notify('{NOTIFY_CHANNEL}', '')"


class OutboxRow(NamedTuple):
    """An event as the outbox stores it. A writer on the hot path (the click batcher) makes
    it straight from what it captured; anything else makes it from a contract with `of`."""

    event_id: UUID
    type: str
    key: str
    payload: str  # the contract's fields as JSON
    occurred_at: datetime

    @classmethod
    def of(cls, event: IntegrationEvent) -> OutboxRow:
        return cls(
            event.event_id,
            event.type,
            event.partition_key,
            event.model_dump_json(),
            event.occurred_at,
        )


def row_parameters(
    rows: Sequence[OutboxRow],
) -> tuple[list[UUID], list[str], list[str], list[str], list[datetime]]:
    """The outbox columns of `rows`, as the arrays `INSERT_ROWS` takes."""
    return (
        [row.event_id for row in rows],
        [row.type for row in rows],
        [row.key for row in rows],
        [row.payload for row in rows],
        [row.occurred_at for row in rows],
    )


async def write_outbox(conn: AsyncConnection, events: Sequence[IntegrationEvent]) -> list[UUID]:
    """Record events in the caller's transaction: they are published only if it commits.

    One statement for any number of events (the click batcher writes hundreds at once),
    and a NOTIFY that PostgreSQL delivers to the relay at commit. An event already in the
    outbox is skipped, so a writer unsure whether its last commit landed can write again;
    the event ids of the rows actually inserted are returned (in no particular order).
    """
    if not events:
        return []
    event_ids, types, keys, payloads, occurred = row_parameters([OutboxRow.of(e) for e in events])
    inserted = await conn.execute(
        _INSERT,
        {
            "event_ids": event_ids,
            "types": types,
            "keys": keys,
            "payloads": payloads,
            "occurred": occurred,
        },
    )
    event_ids = [row.event_id for row in inserted]
    await conn.execute(_NOTIFY)
    return event_ids
