"""link versions: what analytics knows of a link follows its changes, newest first

A link can now be changed (shortener's link_updated). Its events may arrive in any order
(over Kafka each type is a topic of its own), so each row keeps the version it holds (a
creation is 1) and an older event changes nothing. The title comes along for the pages.

Revision ID: analytics_0004
Revises: analytics_0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0004"
down_revision: str | None = "analytics_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("url_creations", sa.Column("title", sa.Text()))
    op.add_column(
        "url_creations",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    op.drop_column("url_creations", "version")
    op.drop_column("url_creations", "title")
