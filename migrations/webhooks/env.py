"""Alembic environment of the webhooks module: its own database, its own version table."""

from app.kernel.migrations import run_env
from app.modules.webhooks.tables import metadata

run_env(metadata, "webhooks")
