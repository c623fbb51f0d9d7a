"""The shortener's migrations build exactly the tables that tables.py describes, undo
them, and leave no table for key material of visitor hashes (issue 8)."""

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
from app.modules.shortener.tables import metadata

_SCRATCH = "shortener_migration_check"
_OPTIONS = {"compare_type": True, "version_table": "shortener_alembic_version"}


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


def test_the_migrations_match_the_tables_and_downgrade_cleanly(scratch_url: str) -> None:
    migrations.upgrade("shortener", scratch_url)
    assert schema_diff(scratch_url) == []
    assert set(metadata.tables) <= table_names(scratch_url)
    assert "visitor_salts" not in table_names(scratch_url)

    config = migrations.alembic_config("shortener", scratch_url)
    command.downgrade(config, "shortener_0003")
    assert "visitor_salts" in table_names(scratch_url)  # back, empty, as 0003 had it

    migrations.upgrade("shortener", scratch_url)
    assert "visitor_salts" not in table_names(scratch_url)
    assert schema_diff(scratch_url) == []

    command.downgrade(config, "base")
    assert table_names(scratch_url) == {"shortener_alembic_version"}


def test_folded_click_counts_move_out_of_urls_and_back(scratch_url: str) -> None:
    """Migration 0008 moves each link's folded count into click_counts; its downgrade puts
    the counts back: no click is lost either way."""
    dsn = scratch_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run(statement: str) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(statement)]
        finally:
            await conn.close()

    config = migrations.alembic_config("shortener", scratch_url)
    command.upgrade(config, "shortener_0007")
    asyncio.run(
        run(
            "INSERT INTO urls (id, code, target_url, click_count) VALUES "
            "(gen_random_uuid(), 'viral', 'https://example.com/', 5), "
            "(gen_random_uuid(), 'quiet', 'https://example.com/', 0)"
        )
    )

    migrations.upgrade("shortener", scratch_url)
    assert asyncio.run(run("SELECT code, clicks FROM click_counts")) == [("viral", 5)]

    command.downgrade(config, "shortener_0007")
    assert asyncio.run(run("SELECT code, click_count FROM urls ORDER BY code")) == [
        ("quiet", 0),
        ("viral", 5),
    ]
