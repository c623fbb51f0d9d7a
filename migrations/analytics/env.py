"""Alembic environment of the analytics module: its own database, its own version table."""

from app.kernel.migrations import run_env
from app.modules.analytics.tables import metadata

run_env(metadata, "analytics")
