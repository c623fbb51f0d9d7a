"""Every module's migrations build exactly what its tables.py declares.

The migrations are frozen text (they never import the app), so nothing else ties them to
the tables the code queries: a change to `tables.py` (or to app.bus's outbox and inbox
factories it calls) without a migration of its own fails here, for every module there is.

Two checks, because alembic's autogenerate comparison is blind to some of a schema (check
constraints, the predicate of a partial index): `compare_metadata` against a migrated
database, and the catalogue of that database against one that `metadata.create_all` built.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.registry import NAMES

# Every column, constraint and index of the public schema, by name (so not by position: a
# column added by a later migration comes last, and that is no difference).
_CATALOGUE = {
    "column": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped AND c.relname <> $1
    """,
    "constraint": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname <> $1
    """,
    "index": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> $1
    """,
}


def tables_of(module: str) -> MetaData:
    metadata: MetaData = importlib.import_module(f"app.modules.{module}.tables").metadata
    return metadata


@pytest.fixture
def scratch(embedded_postgres: EmbeddedPostgres) -> Iterator[Any]:
    """Empty databases of their own: building them disturbs no other test."""
    made: list[str] = []

    async def superuser(statement: str) -> None:
        conn = await asyncpg.connect(embedded_postgres.superuser_dsn())
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def make(name: str) -> str:
        asyncio.run(superuser(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(superuser(f'CREATE DATABASE "{name}"'))
        made.append(name)
        dsn = embedded_postgres.superuser_dsn(name)
        return dsn.replace("postgresql://", "postgresql+asyncpg://")

    yield make
    for name in made:
        asyncio.run(superuser(f'DROP DATABASE "{name}"'))


def create_all(url: str, metadata: MetaData) -> None:
    async def create() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()

    asyncio.run(create())


def autogenerate_diff(url: str, module: str, metadata: MetaData) -> list[Any]:
    """What alembic's autogenerate would change to make the database match tables.py."""
    options = {
        "compare_type": True,
        "compare_server_default": True,
        "version_table": migrations.version_table(module),
    }

    async def compare() -> list[Any]:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts=options), metadata
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def catalogue(url: str, module: str) -> dict[str, list[tuple[Any, ...]]]:
    async def read() -> dict[str, list[tuple[Any, ...]]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            version_table = migrations.version_table(module)
            return {
                kind: sorted(tuple(row) for row in await conn.fetch(query, version_table))
                for kind, query in _CATALOGUE.items()
            }
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.mark.parametrize("module", NAMES)
def test_the_migrations_build_exactly_the_declared_tables(module: str, scratch: Any) -> None:
    metadata = tables_of(module)
    migrated = scratch(f"{module}_migrated_check")
    declared = scratch(f"{module}_declared_check")
    migrations.upgrade(module, migrated)
    create_all(declared, metadata)

    assert autogenerate_diff(migrated, module, metadata) == []
    found, expected = catalogue(migrated, module), catalogue(declared, module)
    for kind in _CATALOGUE:
        missing = sorted(set(expected[kind]) - set(found[kind]))
        unexpected = sorted(set(found[kind]) - set(expected[kind]))
        assert (missing, unexpected) == ([], []), f"{module}: {kind}s (declared, migrated)"
    assert {name for name, *_ in found["column"]} == set(metadata.tables)
