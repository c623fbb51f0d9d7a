"""roles: admin or user; the first account of an instance is its admin

An instance made before roles existed gets its oldest active account as admin, so that
someone can administer it.

Revision ID: auth_0005
Revises: auth_0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0005"
down_revision: str | None = "auth_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("role", sa.Text(), nullable=False, server_default=sa.text("'user'"))
    )
    op.create_check_constraint("users_role", "users", "role IN ('admin', 'user')")
    op.execute(
        "UPDATE users SET role = 'admin' "
        "WHERE id = (SELECT id FROM users WHERE is_active ORDER BY created_at, id LIMIT 1)"
    )


def downgrade() -> None:
    op.drop_constraint("users_role", "users", type_="check")
    op.drop_column("users", "role")
