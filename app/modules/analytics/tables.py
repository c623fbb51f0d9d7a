"""The analytics module's tables, in its own database (filled by events only).

Reads never count raw clicks: `url_stats` (per link and hour) and `url_dimension_stats`
(per link, day and dimension value) are kept up to date in the transaction that stores the
clicks, so a stats query costs the same for ten clicks or ten million.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)

from app.bus.inbox import inbox_tables
from app.bus.outbox import outbox_table
from app.kernel.access import access_tables
from app.modules.analytics.dimensions import DIMENSIONS

metadata = MetaData()

# What analytics knows of each link, from link_created (the owner decides who may read
# its stats). `deleted_at` is a tombstone: it outlives the link so late clicks are dropped.
# A tombstone may come first (events of different types arrive in any order), so it may
# know only the code and the link id. Codes are never reused: the shortener keeps a
# deleted code to answer 410.
url_creations = Table(
    "url_creations",
    metadata,
    Column("code", Text, primary_key=True),
    Column("link_id", Uuid, nullable=False),
    Column("owner_id", Uuid),
    Column("target_url", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("title", Text),
    # The newest version of the link heard of (a creation is 1; link_updated raises it):
    # an older event that arrives later changes nothing.
    Column("version", Integer, nullable=False, server_default=text("1")),
    Index("url_creations_owner", "owner_id"),
)

# Accounts that are gone: a link_created of theirs that arrives late becomes a tombstone.
deleted_owners = Table(
    "deleted_owners",
    metadata,
    Column("owner_id", Uuid, primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every click as received, enriched, kept for export and re-processing (a bot rule changed:
# recompute the rollups from here). Each column is named as the event's field it stores, or
# as the value rollups.py derives from the event: the consumer's insert is derived from
# this table.
clicks = Table(
    "clicks",
    metadata,
    Column("click_id", Uuid, primary_key=True),
    Column("code", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("ip_anonymized", Text),
    Column("country", Text),
    Column("city", Text),
    Column("user_agent", Text),
    Column("referer", Text),
    Column("referer_host", Text, nullable=False),
    Column("browser", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("is_bot", Boolean, nullable=False),
    Column("bot_reason", Text),
    Column("visitor_hash", Text, nullable=False),
    # When analytics stored it: its lag behind occurred_at is the pipeline's.
    Column("stored_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("clicks_code_occurred_at", "code", "occurred_at"),
    Index("clicks_occurred_at", "occurred_at"),  # retention.py
)

# Who was seen, per link and UTC day: what "unique" counts. The insert that finds a row
# already here tells the consumer the visitor is not new.
visitors = Table(
    "visitors",
    metadata,
    Column("code", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("visitor_hash", Text, primary_key=True),
    Index("visitors_day", "day"),  # retention.py
)

# Per link and UTC hour. A visitor is unique in the hour of the day it was first seen, so
# the hours of a day add up to the day's unique visitors.
url_stats = Table(
    "url_stats",
    metadata,
    Column("code", Text, primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("total", Integer, nullable=False),
    Column("human", Integer, nullable=False),
    Column("bot", Integer, nullable=False),
    Column("unique_human", Integer, nullable=False),
    Column("unique_bot", Integer, nullable=False),
)

# Per link, UTC day and value of one dimension (a referer host, a country ...): the top lists.
url_dimension_stats = Table(
    "url_dimension_stats",
    metadata,
    Column("code", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("dimension", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("human", Integer, nullable=False),
    Column("bot", Integer, nullable=False),
    CheckConstraint(
        "dimension IN ({})".format(", ".join(f"'{d.name}'" for d in DIMENSIONS)),
        name="url_dimension_stats_dimension",
    ),
)

processed_events, parked_events = inbox_tables(metadata)
outbox = outbox_table(metadata)  # only access.api_key_used
access_accounts, access_keys = access_tables(metadata)
