"""Alembic environment of the shortener module: its own database, its own version table."""

from app.kernel.migrations import run_env
from app.modules.shortener.tables import metadata

run_env(metadata, "shortener")
