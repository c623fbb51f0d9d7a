"""link details: a title, tags, and a version that each change of a link raises

A link can now be changed (PATCH /api/links/{code}); `version` orders its changes for the
modules and replicas that hear of them by event, in whatever order the events arrive.

Revision ID: shortener_0009
Revises: shortener_0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "shortener_0009"
down_revision: str | None = "shortener_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("title", sa.Text()))
    op.add_column(
        "urls",
        sa.Column(
            "tags", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")
        ),
    )
    op.add_column(
        "urls", sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
    )
    op.add_column("urls", sa.Column("updated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("updated_at", "version", "tags", "title"):
        op.drop_column("urls", column)
