"""The transactional outbox: the table, defined once and placed in each producing module's
own database, and the one way to write to it."""

from __future__ import annotations

import json
from collections.abc import Sequence

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

from app.bus.envelope import Envelope
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
    """
)
_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")


async def write_outbox(conn: AsyncConnection, events: Sequence[IntegrationEvent]) -> None:
    """Record events in the caller's transaction: they are published only if it commits.

    One statement for any number of events (the click batcher writes hundreds at once),
    and a NOTIFY that PostgreSQL delivers to the relay at commit.
    """
    if not events:
        return
    envelopes = [Envelope.wrap(event) for event in events]
    await conn.execute(
        _INSERT,
        {
            "event_ids": [e.event_id for e in envelopes],
            "types": [e.type for e in envelopes],
            "keys": [e.key for e in envelopes],
            "payloads": [json.dumps(e.payload, separators=(",", ":")) for e in envelopes],
            "occurred": [e.occurred_at for e in envelopes],
        },
    )
    await conn.execute(_NOTIFY)
