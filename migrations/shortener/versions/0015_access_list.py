"""access list: this module's copy of who may call it (accounts' state, API key hashes)

Auth publishes an account's state (active, role, since when its tokens count) and the
hashes of its API keys; every module keeps them here, and its Gate reads them on each
authenticated request (app.kernel.access).

Revision ID: shortener_0015
Revises: shortener_0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "shortener_0015"
down_revision: str | None = "shortener_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_accounts",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("tokens_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("key_id", sa.Uuid(), primary_key=True),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('admin', 'user')", name="access_keys_role"),
    )
    op.create_index("access_keys_hash", "access_keys", ["key_hash"], unique=True)


def downgrade() -> None:
    op.drop_table("access_keys")
    op.drop_table("access_accounts")
