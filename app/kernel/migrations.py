"""Alembic, once for every module: one history and one version table per module.

Alembic's command API runs its own event loop, so async callers go through
`asyncio.to_thread(upgrade, ...)`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_APP_ROOT = Path(__file__).resolve().parents[1]


def migrations_root() -> Path:
    """`migrations/` beside the package in a checkout, `app/_migrations` in a wheel."""
    packaged = _APP_ROOT / "_migrations"
    return packaged if packaged.is_dir() else _APP_ROOT.parent / "migrations"


def alembic_config(module: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_root() / module))
    config.set_main_option("version_table", f"{module}_alembic_version")
    config.attributes["url"] = url
    return config


def upgrade(module: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(module, url), revision)


def run_env(metadata: MetaData, module: str) -> None:
    """The body of every module's `env.py`: online migrations through asyncpg.

    The URL comes from `encurta migrate`, or, for the bare `alembic -n MODULE` command
    developers use, from `ENCURTA_<MODULE>__DATABASE_URL`.
    """
    config = context.config
    url = config.attributes.get("url") or os.environ.get(f"ENCURTA_{module.upper()}__DATABASE_URL")
    if not url:
        raise RuntimeError(f"no database URL: set ENCURTA_{module.upper()}__DATABASE_URL")
    version_table = config.get_main_option("version_table") or "alembic_version"

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(str(url), poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())
