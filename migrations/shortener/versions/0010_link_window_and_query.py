"""link window and query: valid_from, and forward_query

Before `valid_from` a link answers like an unknown code; with `forward_query` the query
string of a visit is appended to the target. A window that closes before it opens is
refused by the table itself, whichever of its ends a change moves.

Revision ID: shortener_0010
Revises: shortener_0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0010"
down_revision: str | None = "shortener_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("valid_from", sa.DateTime(timezone=True)))
    op.add_column(
        "urls",
        sa.Column("forward_query", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_check_constraint("urls_window", "urls", "valid_from < expires_at")


def downgrade() -> None:
    op.drop_constraint("urls_window", "urls", type_="check")
    op.drop_column("urls", "forward_query")
    op.drop_column("urls", "valid_from")
