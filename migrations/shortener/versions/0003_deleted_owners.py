"""deleted owners: a deleted account's leftover tokens create no links

Revision ID: shortener_0003
Revises: shortener_0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0003"
down_revision: str | None = "shortener_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deleted_owners",
        sa.Column("owner_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "deleted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("deleted_owners")
