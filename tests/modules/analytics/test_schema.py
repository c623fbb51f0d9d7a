"""The hand-written migration builds exactly the tables that tables.py describes, and
undoes them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.modules.analytics.tables import metadata

_SCRATCH = "analytics_migration_check"
_OPTIONS = {"compare_type": True, "version_table": "analytics_alembic_version"}


@pytest.fixture
def scratch_url(embedded_postgres: EmbeddedPostgres) -> Iterator[str]:
    """An empty database of its own: migrating it up and down disturbs no other test."""

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(embedded_postgres.superuser_dsn())
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{_SCRATCH}"'))
    asyncio.run(run(f'CREATE DATABASE "{_SCRATCH}"'))
    dsn = embedded_postgres.superuser_dsn(_SCRATCH)
    yield dsn.replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(run(f'DROP DATABASE "{_SCRATCH}"'))


def schema_diff(url: str) -> list[Any]:
    """What alembic's autogenerate would change to make the database match tables.py."""

    async def compare() -> list[Any]:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts=_OPTIONS), metadata
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def table_names(url: str) -> set[str]:
    async def fetch() -> set[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {row["tablename"] for row in rows}

    return asyncio.run(fetch())


def test_the_migration_matches_the_tables_and_downgrades_cleanly(scratch_url: str) -> None:
    migrations.upgrade("analytics", scratch_url)
    assert schema_diff(scratch_url) == []
    assert set(metadata.tables) <= table_names(scratch_url)

    command.downgrade(migrations.alembic_config("analytics", scratch_url), "analytics_0001")
    assert table_names(scratch_url) == {"analytics_alembic_version"}

    migrations.upgrade("analytics", scratch_url)
    assert schema_diff(scratch_url) == []
