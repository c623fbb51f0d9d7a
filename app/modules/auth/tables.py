"""The auth module's tables, in its own database."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
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
from app.kernel.limits import rate_limit_table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    # As given (email-validator's normalisation: NFC local part, lower-case domain).
    Column("email", Text, nullable=False),
    # What an email is looked up and unique by (emails.email_key: NFKC, then casefold).
    # NULL only for rows migration 0002 found sharing a key with an older account.
    Column("email_key", Text),
    Column("password_hash", Text, nullable=False),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The first account of an instance is its admin (service.register).
    Column("role", Text, nullable=False, server_default=text("'user'")),
    Index("users_email_key", "email_key", unique=True),
    CheckConstraint("role IN ('admin', 'user')", name="users_role"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # All tokens rotated from one login share a family; reuse of any revokes the family.
    Column("family_id", Uuid, nullable=False),
    # SHA-256 of the token: 256 random bits need no slow hash, and the token is never stored.
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("replaced_by", Uuid),
    Index("refresh_tokens_family", "family_id"),
    Index("refresh_tokens_user", "user_id"),
    Index("refresh_tokens_expires", "expires_at"),  # the purge
)

# API keys as their owners see them; what the Gates need is in access_keys.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    # The key's first characters, to tell keys apart in a list; never enough to use one.
    Column("prefix", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Index("api_keys_user", "user_id", "created_at"),
)

# Invitations to register (ENCURTA_AUTH__REGISTRATION=invite): single use, expiring.
invites = Table(
    "invites",
    metadata,
    Column("id", Uuid, primary_key=True),
    # SHA-256 of the token, as for refresh tokens: the token is shown once, never stored.
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    # Optional restriction: only this address may use it (compared by its email_key).
    Column("email", Text),
    Column("email_key", Text),
    Column("created_by", Uuid, ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("used_by", Uuid, ForeignKey("users.id", ondelete="SET NULL")),
)

outbox = outbox_table(metadata)
processed_events, parked_events = inbox_tables(metadata)  # only access.api_key_used
access_accounts, access_keys = access_tables(metadata)
rate_limits = rate_limit_table(metadata)  # with ENCURTA_LIMITS__STORE=postgres
