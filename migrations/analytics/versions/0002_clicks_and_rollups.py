"""clicks, visitors, hourly and daily rollups, the links' read model and the inbox

Revision ID: analytics_0002
Revises: analytics_0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0002"
down_revision: str | None = "analytics_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "url_creations",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid()),
        sa.Column("target_url", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("url_creations_owner", "url_creations", ["owner_id"])

    op.create_table(
        "deleted_owners",
        sa.Column("owner_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "deleted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )

    op.create_table(
        "clicks",
        sa.Column("click_id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip_anonymized", sa.Text()),
        sa.Column("country", sa.Text()),
        sa.Column("city", sa.Text()),
        sa.Column("user_agent", sa.Text()),
        sa.Column("referer", sa.Text()),
        sa.Column("referer_host", sa.Text(), nullable=False),
        sa.Column("browser", sa.Text(), nullable=False),
        sa.Column("os", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("bot_reason", sa.Text()),
        sa.Column("visitor_hash", sa.Text(), nullable=False),
    )
    op.create_index("clicks_code_occurred_at", "clicks", ["code", "occurred_at"])

    op.create_table(
        "visitors",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("visitor_hash", sa.Text(), primary_key=True),
    )

    op.create_table(
        "url_stats",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("human", sa.Integer(), nullable=False),
        sa.Column("bot", sa.Integer(), nullable=False),
        sa.Column("unique_human", sa.Integer(), nullable=False),
        sa.Column("unique_bot", sa.Integer(), nullable=False),
    )

    op.create_table(
        "url_dimension_stats",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("dimension", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text(), primary_key=True),
        sa.Column("human", sa.Integer(), nullable=False),
        sa.Column("bot", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "dimension IN ('referer', 'country', 'city', 'browser', 'os', 'device')",
            name="url_dimension_stats_dimension",
        ),
    )

    # app.bus.inbox.inbox_tables as of this revision, written out: a migration must not
    # change when the app's code does (a change to the inbox gets a migration of its own).
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


def downgrade() -> None:
    op.drop_table("parked_events")
    op.drop_table("processed_events")
    op.drop_table("url_dimension_stats")
    op.drop_table("url_stats")
    op.drop_table("visitors")
    op.drop_table("clicks")
    op.drop_table("deleted_owners")
    op.drop_table("url_creations")
