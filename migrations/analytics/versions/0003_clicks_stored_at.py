"""clicks: stored_at, and clicks are their own inbox

A click's id is the primary key of `clicks`, and the rollups grow only by the clicks that
insert actually took, so the consumer no longer records click events in processed_events.
`stored_at` says when analytics stored each click (its lag behind occurred_at is the
pipeline's); rows stored before this revision get the time of the upgrade.

Revision ID: analytics_0003
Revises: analytics_0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0003"
down_revision: str | None = "analytics_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A stable default: PostgreSQL stores it once, rewriting no row of a long table.
    op.add_column(
        "clicks",
        sa.Column(
            "stored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    # Click events are recognised by the clicks table from now on.
    op.execute("DELETE FROM processed_events WHERE type = 'shortener.link_clicked.v1'")


def downgrade() -> None:
    # The clicks stored become the inbox's record of their events again.
    op.execute(
        """
        INSERT INTO processed_events (event_id, type, ttl_expires_at)
        SELECT click_id, 'shortener.link_clicked.v1', now() + interval '8 days' FROM clicks
        ON CONFLICT DO NOTHING
        """
    )
    op.drop_column("clicks", "stored_at")
