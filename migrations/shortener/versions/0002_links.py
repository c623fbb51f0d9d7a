"""links, visitor salts, and the inbox

Revision ID: shortener_0002
Revises: shortener_0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0002"
down_revision: str | None = "shortener_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "urls",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.Text(), nullable=False, unique=True),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("click_count", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("urls_owner_created", "urls", ["owner_id", "created_at"])
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
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
    op.drop_table("visitor_salts")
    op.drop_table("urls")
