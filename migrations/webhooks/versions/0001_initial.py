"""webhooks: receivers, their delivery queue, link owners, pending clicks, inbox, access list

Revision ID: webhooks_0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "webhooks_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("webhooks_owner", "webhooks", ["owner_id"])
    op.create_table(
        "link_owners",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
    )
    op.create_index("link_owners_owner", "link_owners", ["owner_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.Uuid(),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed', 'parked')", name="deliveries_status"
        ),
    )
    op.create_index("deliveries_webhook", "deliveries", ["webhook_id", "created_at"])
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.create_table(
        "pending_clicks",
        sa.Column("click_id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("click", sa.JSON(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("pending_clicks_code", "pending_clicks", ["code"])
    op.create_table(
        "click_flushes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=False),
    )

    # app.bus.inbox.inbox_tables as of this revision, written out.
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("ttl_expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("processed_events_ttl", "processed_events", ["ttl_expires_at"])
    op.create_table(
        "parked_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid()),
        sa.Column("type", sa.Text()),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "first_failed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "last_failed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )

    # app.kernel.access.access_tables as of this revision, written out.
    op.create_table(
        "access_accounts",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("tokens_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("key_id", sa.Uuid(), primary_key=True),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('admin', 'user')", name="access_keys_role"),
    )
    op.create_index("access_keys_hash", "access_keys", ["key_hash"], unique=True)

    # app.bus.outbox.outbox_table as of this revision, written out: the module tells auth
    # when it admitted an API key (access.api_key_used).
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text()),
        sa.Column("claimed_by", sa.Uuid()),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
    )
    op.create_index("outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    for table in (
        "outbox",
        "access_keys",
        "access_accounts",
        "parked_events",
        "processed_events",
        "click_flushes",
        "pending_clicks",
        "deliveries",
        "link_owners",
        "webhooks",
    ):
        op.drop_table(table)
