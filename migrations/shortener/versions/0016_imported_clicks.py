"""imported clicks: the click totals a link brought from the tool it was imported from

Kept apart from click_counts (clicks counted here), so `encurta reconcile`, which compares
counted clicks with analytics, still holds after an import.

Revision ID: shortener_0016
Revises: shortener_0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0016"
down_revision: str | None = "shortener_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "urls",
        sa.Column("imported_clicks", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_column("urls", "imported_clicks")
