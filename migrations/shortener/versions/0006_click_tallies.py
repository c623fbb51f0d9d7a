"""click tallies: click groups append their counts instead of updating the link's row

Concurrent click groups of one link used to queue on its row lock (the UPDATE of
urls.click_count held it until commit), so one viral link serialized every commit. A group
now appends (code, clicks) here; the click batcher folds the rows into urls.click_count.

Revision ID: shortener_0006
Revises: shortener_0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0006"
down_revision: str | None = "shortener_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_tallies",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
    )
    op.create_index("click_tallies_code", "click_tallies", ["code"])


def downgrade() -> None:
    # Nothing counted is lost: pending tallies are folded into the links first.
    op.execute(
        """
        UPDATE urls SET click_count = urls.click_count + t.n
        FROM (SELECT code, sum(clicks) AS n FROM click_tallies GROUP BY code) AS t
        WHERE urls.code = t.code
        """
    )
    op.drop_table("click_tallies")
