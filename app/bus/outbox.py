"""The transactional outbox: the table, defined once and placed in each producing module's
own database, and the one way to write to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NewType
from uuid import UUID

import orjson
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
from sqlalchemy.dialects.postgresql import JSON
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
        # json, not jsonb: the text as written, checked but not converted either way.
        Column("payload", JSON, nullable=False),
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

# Rows cross to PostgreSQL as one JSON document, an array of `OutboxRow`s, rather than as
# five array parameters: asyncpg checks every element of an array parameter against
# collections.abc in Python, which cost more than the insert. For a writer whose state
# change and outbox rows fit one statement (the click batcher: one round trip per group, on
# the driver's connection), in PostgreSQL's numbered parameters:
#     WITH inserted AS (INSERT_ROWS) ... SELECT NOTIFY ...
# with `rows_document(rows)` as $1, and as $2 and $3 the relay and seconds of a hand-off
# lease (handoff.py), or NULLs; `inserted` yields (id, event_id, key) per row actually
# inserted. An event already in the outbox is skipped, so a writer unsure whether its last
# commit landed can write again.
_INSERT_FROM = """
    INSERT INTO outbox (event_id, type, key, payload, occurred_at, claimed_by, claimed_until)
    SELECT event_id, type, key, payload, occurred_at, {relay},
           now() + make_interval(secs => {seconds})
    FROM json_to_recordset(CAST({rows} AS json))
        AS r(event_id uuid, type text, key text, payload json, occurred_at timestamptz)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id, event_id, key
"""
INSERT_ROWS = _INSERT_FROM.format(rows="$1", relay="$2::uuid", seconds="$3::float8")
_INSERT = text(_INSERT_FROM.format(rows=":rows", relay="NULL::uuid", seconds="NULL::float8"))
NOTIFY = f"pg_notify('{NOTIFY_CHANNEL}', '')"
_NOTIFY = text(f"SELECT {NOTIFY}")

# An event as the outbox stores it, as one JSON object: {"event_id", "type", "key",
# "occurred_at", "payload": {the contract's fields}}. A writer on the hot path (the click
# batcher) makes it straight from what it captured, in one encoding; anything else makes it
# from a contract with `row_of`.
OutboxRow = NewType("OutboxRow", bytes)


def row_of(event: IntegrationEvent) -> OutboxRow:
    return OutboxRow(
        orjson.dumps(
            {
                "event_id": event.event_id,
                "type": event.type,
                "key": event.partition_key,
                "occurred_at": event.occurred_at,
                "payload": orjson.Fragment(event.model_dump_json()),
            }
        )
    )


def rows_document(rows: Sequence[OutboxRow]) -> str:
    """The JSON array of `rows`, as INSERT_ROWS takes it."""
    return (b"[" + b",".join(rows) + b"]").decode()


async def write_outbox(conn: AsyncConnection, events: Sequence[IntegrationEvent]) -> list[UUID]:
    """Record events in the caller's transaction: they are published only if it commits.

    One statement for any number of events, and a NOTIFY that PostgreSQL delivers to the
    relay at commit. The event ids of the rows actually inserted are returned (in no
    particular order).
    """
    if not events:
        return []
    inserted = await conn.execute(
        _INSERT, {"rows": rows_document([row_of(event) for event in events])}
    )
    event_ids = [row.event_id for row in inserted]
    await conn.execute(_NOTIFY)
    return event_ids
