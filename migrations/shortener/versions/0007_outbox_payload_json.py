"""outbox payload as json: the text as written, checked but not converted

jsonb took the writer's JSON apart into its binary form on every insert, and the relay put
it back together as text on every claim: the outbox only ever stores and returns the text.

Revision ID: shortener_0007
Revises: shortener_0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "shortener_0007"
down_revision: str | None = "shortener_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
