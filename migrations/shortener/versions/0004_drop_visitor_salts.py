"""drop visitor salts: the day's key of visitor hashes is never stored

A salt stored beside the /24 and user agent of each click let anyone with the database
recover the exact IPv4 from a visitor hash (256 candidates). The key is now derived in
memory from a secret outside the databases (app/modules/shortener/visitors.py).

Revision ID: shortener_0004
Revises: shortener_0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0004"
down_revision: str | None = "shortener_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("visitor_salts")


def downgrade() -> None:
    # The table comes back empty: the salts are gone, and the code that filled it too.
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
    )
