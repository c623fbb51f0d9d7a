"""visit limits: max_visits, and the human visits counted against it

`visits` is raised in its own statement, only while below `max_visits`: the row is the
one place every replica meets, so no two let visit N+1 through.

Revision ID: shortener_0011
Revises: shortener_0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0011"
down_revision: str | None = "shortener_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("max_visits", sa.Integer()))
    op.add_column(
        "urls", sa.Column("visits", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.create_check_constraint("urls_max_visits", "urls", "max_visits > 0")


def downgrade() -> None:
    op.drop_constraint("urls_max_visits", "urls", type_="check")
    op.drop_column("urls", "visits")
    op.drop_column("urls", "max_visits")
