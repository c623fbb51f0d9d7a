"""click counts: a link's folded clicks in a narrow table of their own, not in urls

The fold used to update urls.click_count, taking only the tallies of links it could find
(an EXISTS per tally) and locking those links first. Over many links PostgreSQL may plan
that EXISTS as a scan of every link, and the fold cost about 130 µs per link folded
against 15-20 µs now; each fold also rewrote the wide urls rows that redirects look up.
Here a tally is folded into its code's count whether or not the link exists (nothing can
vanish), and folders meet only each other, in code order.

Revision ID: shortener_0008
Revises: shortener_0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0008"
down_revision: str | None = "shortener_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_counts",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO click_counts (code, clicks) "
        "SELECT code, click_count FROM urls WHERE click_count <> 0"
    )
    op.drop_column("urls", "click_count")


def downgrade() -> None:
    op.add_column(
        "urls",
        sa.Column("click_count", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.execute(
        "UPDATE urls SET click_count = c.clicks FROM click_counts AS c WHERE urls.code = c.code"
    )
    op.drop_table("click_counts")
