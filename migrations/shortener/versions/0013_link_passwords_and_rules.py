"""link passwords and redirect rules

`password_hash`: an argon2id hash (app.kernel.hashing), never the password; a link with one
answers a form until its password is given. `redirect_rules`: an ordered list of
`{"when": {...}, "url": "..."}` (app/modules/shortener/rules.py); the first that matches a
visit picks its target, else `target_url`. Existing links get neither.

Revision ID: shortener_0013
Revises: shortener_0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "shortener_0013"
down_revision: str | None = "shortener_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("password_hash", sa.Text()))
    op.add_column(
        "urls",
        sa.Column(
            "redirect_rules",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
    )


def downgrade() -> None:
    op.drop_column("urls", "redirect_rules")
    op.drop_column("urls", "password_hash")
