"""The webhooks module's tables, in its own database.

`deliveries` is the work queue: a row per (event, webhook), written in the inbox
transaction that consumed the event, so every event owes each matching webhook exactly one
delivery; its id is the `webhook-id` header, the same on every retry. Clicks wait in
`pending_clicks` and leave in batches (one delivery per webhook and interval).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.bus.inbox import inbox_tables
from app.bus.outbox import outbox_table
from app.kernel.access import access_tables

metadata = MetaData()

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    # The signing key, shown to its owner once: the module must have it to sign.
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("webhooks_owner", "owner_id"),
)

# Who owns each link (from link_created/updated): a click names only its code.
link_owners = Table(
    "link_owners",
    metadata,
    Column("code", Text, primary_key=True),
    Column("owner_id", Uuid, nullable=False),
    Index("link_owners_owner", "owner_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("webhook_id", Uuid, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('pending', 'delivered', 'failed', 'parked')", name="deliveries_status"
    ),
    Index("deliveries_webhook", "webhook_id", "created_at"),
    Index(
        "deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'failed')"),
    ),
    # retention.py: the finished deliveries, by age.
    Index(
        "deliveries_finished",
        "created_at",
        postgresql_where=text("status IN ('delivered', 'parked')"),
    ),
)

pending_clicks = Table(
    "pending_clicks",
    metadata,
    Column("click_id", Uuid, primary_key=True),
    Column("code", Text, nullable=False),
    Column("click", JSON, nullable=False),  # as the payload shows it: never an address
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("pending_clicks_code", "code"),
)

# When clicks last left, whichever process sent them: one batch per interval in all,
# however many processes run the worker.
click_flushes = Table(
    "click_flushes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("flushed_at", DateTime(timezone=True), nullable=False),
)

processed_events, parked_events = inbox_tables(metadata)
outbox = outbox_table(metadata)  # only access.api_key_used
access_accounts, access_keys = access_tables(metadata)
