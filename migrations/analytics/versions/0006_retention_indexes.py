"""retention indexes: raw clicks and visitors by age

The retention purge (app.modules.analytics.retention) deletes raw clicks by `occurred_at`
and visitors by `day`; without these indexes each batch would scan the whole table.

Revision ID: analytics_0006
Revises: analytics_0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "analytics_0006"
down_revision: str | None = "analytics_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("clicks_occurred_at", "clicks", ["occurred_at"])
    op.create_index("visitors_day", "visitors", ["day"])


def downgrade() -> None:
    op.drop_index("visitors_day", table_name="visitors")
    op.drop_index("clicks_occurred_at", table_name="clicks")
