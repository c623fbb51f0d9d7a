"""admin: disabled links, blocked domains and the tally of visits to unknown codes

An admin may disable any link (`disabled_at`, with a reason shown in its 410) and block a
domain with its subdomains: links to it are refused, and existing ones answer 410. Visits
to codes that do not exist are counted per day and path in `orphan_visits`, a rollup the
redirect's in-memory tally is folded into: one row per day and path, never one per visit.

Revision ID: shortener_0014
Revises: shortener_0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0014"
down_revision: str | None = "shortener_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("urls", sa.Column("disabled_reason", sa.Text()))
    op.create_table(
        "blocked_domains",
        sa.Column("domain", sa.Text(), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.Uuid()),
    )
    op.create_table(
        "orphan_visits",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("visits", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orphan_visits")
    op.drop_table("blocked_domains")
    op.drop_column("urls", "disabled_reason")
    op.drop_column("urls", "disabled_at")
