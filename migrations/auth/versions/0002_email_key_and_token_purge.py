"""users.email_key (NFKC + casefold) replaces lower(email); an index for the token purge

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-12-01

Until now an email was unique by PostgreSQL's lower(email) and looked up by Python's
str.lower(). Under a C or POSIX ctype lower() folds ASCII only, so `ÄNNE@x` and `änne@x`
could both register and the first could never log in. Each stored row gets its key here,
computed in Python exactly as the app does (a frozen copy: a migration must not change
when the app's code does).

When several stored rows share a key, one keeps it: the row that could log in until now
(its lower(email) matched what the old login looked up), else the oldest. The others get
no key (NULL): they stay what they already were, accounts nobody can log in to, and are
reported by id (never by email) for an operator to settle.
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0002"
down_revision: str | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _fold(text: str) -> str:
    """app.modules.auth.emails.fold as of this revision."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def upgrade() -> None:
    op.add_column("users", sa.Column("email_key", sa.Text()))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, email, lower(email) AS pg_lower FROM users ORDER BY created_at, id")
    ).all()
    owners: dict[str, tuple[object, bool]] = {}  # key -> (id, could log in until now)
    for row in rows:
        key = _fold(row.email)
        reachable = row.pg_lower == row.email.strip().lower()
        held = owners.get(key)
        if held is None or (reachable and not held[1]):
            owners[key] = (row.id, reachable)
    winners = {user_id: key for key, (user_id, _) in owners.items()}
    users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("email_key", sa.Text()))
    if winners:
        bind.execute(
            users.update()
            .where(users.c.id == sa.bindparam("user_id"))
            .values(email_key=sa.bindparam("key")),
            [{"user_id": user_id, "key": key} for user_id, key in winners.items()],
        )
    unkeyed = [str(row.id) for row in rows if row.id not in winners]
    if unkeyed:
        log.warning(
            "auth_0002: %d account(s) share their email with an older one and cannot log "
            "in (as before): users.id %s",
            len(unkeyed),
            ", ".join(unkeyed),
        )
    op.drop_index("users_email_lower", table_name="users")
    op.create_index("users_email_key", "users", ["email_key"], unique=True)
    op.create_index("refresh_tokens_expires", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("refresh_tokens_expires", table_name="refresh_tokens")
    op.drop_index("users_email_key", table_name="users")
    op.drop_column("users", "email_key")
    op.create_index("users_email_lower", "users", [sa.text("lower(email)")], unique=True)
