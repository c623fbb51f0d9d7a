"""outbox lease: the relay claims rows with a lease instead of a transaction held open

The relay used to hold its claim (FOR UPDATE) in a transaction that stayed open while the
consumers worked. It now writes who claimed a row and until when, commits, publishes, and
marks the row sent in another transaction.

Revision ID: shortener_0005
Revises: shortener_0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shortener_0005"
down_revision: str | None = "shortener_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding them rewrites nothing, even on a long outbox.
    op.add_column("outbox", sa.Column("claimed_by", sa.Uuid()))
    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("outbox", "claimed_until")
    op.drop_column("outbox", "claimed_by")
