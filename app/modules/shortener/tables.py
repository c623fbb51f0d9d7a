"""The shortener module's tables, in its own database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.bus.inbox import inbox_tables
from app.bus.outbox import outbox_table
from app.kernel.access import access_tables
from app.kernel.limits import rate_limit_table

metadata = MetaData()

urls = Table(
    "urls",
    metadata,
    Column("id", Uuid, primary_key=True),
    # Unique forever: a deleted link's code is never handed out again.
    Column("code", Text, nullable=False, unique=True),
    Column("target_url", Text, nullable=False),
    Column("owner_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("title", Text),
    # As given, at most one spelling per link: tags compare case-insensitively, by their
    # keys (str.casefold, in the same order). `search_key`: code, title and target, folded.
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("tag_keys", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("search_key", Text, nullable=False, server_default=text("''")),
    # Raised by each change: other modules and replicas keep the newest they heard of.
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("updated_at", DateTime(timezone=True)),
    # Before it, the link answers like an unknown code.
    Column("valid_from", DateTime(timezone=True)),
    # The visit's query string is appended to the target.
    Column("forward_query", Boolean, nullable=False, server_default=false()),
    # At most this many human visits are let through; `visits` counts them.
    Column("max_visits", Integer),
    Column("visits", Integer, nullable=False, server_default=text("0")),
    # An argon2id hash (never the password): the link answers a form until it is given.
    Column("password_hash", Text),
    # Ordered `{"when": {...}, "url": ...}` (rules.py): the first that matches picks the target.
    Column("redirect_rules", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Disabled by an admin: it answers 410 with the reason, and only an admin re-enables it.
    Column("disabled_at", DateTime(timezone=True)),
    Column("disabled_reason", Text),
    # Clicks counted by the tool a link was imported from (imports.py): shown apart, never
    # added to click_count, which analytics must agree with.
    Column("imported_clicks", BigInteger, nullable=False, server_default=text("0")),
    Index("urls_owner_created", "owner_id", "created_at"),
    CheckConstraint("valid_from < expires_at", name="urls_window"),
    CheckConstraint("max_visits > 0", name="urls_max_visits"),
)

# Clicks counted but not yet added to click_counts: each click group appends one row per
# link instead of updating the link's count, so concurrent groups (of one viral link) never
# wait on its row lock; the click batcher folds them into click_counts about once a second.
click_tallies = Table(
    "click_tallies",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("code", Text, nullable=False),
    Column("clicks", BigInteger, nullable=False),
    Index("click_tallies_code", "code"),
)

# Clicks folded in from click_tallies, per code: a link's count is this (none yet: 0) plus
# its pending tallies. Apart from urls, so a fold rewrites a narrow row, not the link's.
click_counts = Table(
    "click_counts",
    metadata,
    Column("code", Text, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
)

# No key material of visitor hashes is stored here (or in any database): see visitors.py.

# Accounts auth has deleted: their leftover access tokens (valid for their last minutes)
# must not create links.
deleted_owners = Table(
    "deleted_owners",
    metadata,
    Column("owner_id", Uuid, primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Domains an admin blocked, each with its subdomains: links to them are refused, and
# existing ones answer 410 (admin.py, blocklist.py).
blocked_domains = Table(
    "blocked_domains",
    metadata,
    Column("domain", Text, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Uuid),
)

# Visits to codes that do not exist, per day and path: a rollup that the redirect's
# in-memory tally is folded into (orphans.py), never a row per visit, never an address.
orphan_visits = Table(
    "orphan_visits",
    metadata,
    Column("day", Date, primary_key=True),
    Column("path", Text, primary_key=True),
    Column("visits", BigInteger, nullable=False),
)

outbox = outbox_table(metadata)
processed_events, parked_events = inbox_tables(metadata)
access_accounts, access_keys = access_tables(metadata)
rate_limits = rate_limit_table(metadata)  # with ENCURTA_LIMITS__STORE=postgres
