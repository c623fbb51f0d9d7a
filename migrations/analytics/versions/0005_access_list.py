"""access list: this module's copy of who may call it (accounts' state, API key hashes)

Auth publishes an account's state (active, role, since when its tokens count) and the
hashes of its API keys; every module keeps them here, and its Gate reads them on each
authenticated request (app.kernel.access).

Revision ID: analytics_0005
Revises: analytics_0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "analytics_0005"
down_revision: str | None = "analytics_0004"
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

    # app.bus.outbox.outbox_table as of this revision, written out: analytics now tells
    # auth when it admitted an API key (access.api_key_used).
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text()),
        sa.Column("claimed_by", sa.Uuid()),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
    )
    op.create_index("outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("access_keys")
    op.drop_table("access_accounts")
