"""Alembic environment of the auth module: its own database, its own version table."""

from app.kernel.migrations import run_env
from app.modules.auth.tables import metadata

run_env(metadata, "auth")
