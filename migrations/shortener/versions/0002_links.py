"""links, visitor salts, and the inbox

Revision ID: shortener_0002
Revises: shortener_0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.bus.inbox import inbox_tables

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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
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
    # The inbox is defined once, in app.bus; a later change to it gets its own migration.
    for table in inbox_tables(sa.MetaData()):
        table.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("parked_events")
    op.drop_table("processed_events")
    op.drop_table("visitor_salts")
    op.drop_table("urls")
