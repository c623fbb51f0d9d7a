"""retention index: finished deliveries by age

The retention purge (app.modules.webhooks.retention) deletes delivered and parked
deliveries by `created_at`; this partial index finds them without a scan.

Revision ID: webhooks_0002
Revises: webhooks_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "webhooks_0002"
down_revision: str | None = "webhooks_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "deliveries_finished",
        "deliveries",
        ["created_at"],
        postgresql_where=sa.text("status IN ('delivered', 'parked')"),
    )


def downgrade() -> None:
    op.drop_index("deliveries_finished", table_name="deliveries")
