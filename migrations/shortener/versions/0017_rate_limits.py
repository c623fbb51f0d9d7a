"""rate limits: counters shared by the module's replicas (ENCURTA_LIMITS__STORE=postgres)

One row per hashed key and fixed window (app.kernel.limits.PostgresStore), deleted once
its window has ended.

Revision ID: shortener_0017
Revises: shortener_0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0017"
down_revision: str | None = "shortener_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger(), primary_key=True),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("rate_limits_expiry", "rate_limits", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limits")
