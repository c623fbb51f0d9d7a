"""link search keys: tags and words compared case-insensitively in every script

The database's own lower() and ILIKE fold ASCII letters only under the C locale (the
embedded server's), so `CAFÉ` and `café` were two tags. The keys are folded in Python
(str.casefold) when a link is written: `tag_keys` beside `tags`, and `search_key` for the
code, title and target. Links written before get keys folded by lower(), exact for the
ASCII that their codes and targets hold.

Revision ID: shortener_0012
Revises: shortener_0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "shortener_0012"
down_revision: str | None = "shortener_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "urls",
        sa.Column(
            "tag_keys",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.add_column(
        "urls", sa.Column("search_key", sa.Text(), nullable=False, server_default=sa.text("''"))
    )
    op.execute(
        """
        UPDATE urls SET
            tag_keys = ARRAY(SELECT lower(tag) FROM unnest(tags) AS tag),
            search_key = lower(code || E'\\n' || coalesce(title, '') || E'\\n' || target_url)
        """
    )


def downgrade() -> None:
    op.drop_column("urls", "search_key")
    op.drop_column("urls", "tag_keys")
