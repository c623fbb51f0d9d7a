"""The auth migrations build exactly what tables.py describes, and 0002 gives the rows
stored before it their email keys (on the embedded server's C ctype, where lower() folds
ASCII only: how `ÄNNE@` and `änne@` came to be two accounts)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
from app.modules.auth.tables import metadata

_SCRATCH = "auth_migration_check"
_OPTIONS = {"compare_type": True, "version_table": "auth_alembic_version"}


@pytest.fixture
def scratch_url(embedded_postgres: EmbeddedPostgres) -> Iterator[str]:
    """An empty database of its own: migrating it up and down disturbs no other test."""
    asyncio.run(superuser(embedded_postgres, f'DROP DATABASE IF EXISTS "{_SCRATCH}"'))
    asyncio.run(superuser(embedded_postgres, f'CREATE DATABASE "{_SCRATCH}"'))
    dsn = embedded_postgres.superuser_dsn(_SCRATCH)
    yield dsn.replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(superuser(embedded_postgres, f'DROP DATABASE "{_SCRATCH}"'))


async def superuser(server: EmbeddedPostgres, statement: str) -> None:
    conn = await asyncpg.connect(server.superuser_dsn())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def run(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def schema_diff(url: str) -> list[Any]:
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


def test_the_migrations_match_the_tables_and_downgrade_cleanly(scratch_url: str) -> None:
    migrations.upgrade("auth", scratch_url)
    assert schema_diff(scratch_url) == []

    command.downgrade(migrations.alembic_config("auth", scratch_url), "base")
    tables = run(scratch_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert {row["tablename"] for row in tables} == {"auth_alembic_version"}


# (email, could it log in before 0002: lower(email) in PostgreSQL == str.lower in Python)
ROWS = [
    ("ÄNNE@example.com", False),  # the case: it never could log in...
    ("änne@example.com", True),  # ...this one could, and keeps the key although younger
    ("ÄöX@example.com", False),  # neither could: the older keeps the key
    ("äÖX@example.com", False),
    ("FINN@example.com", True),  # both could: the older keeps the key
    ("ﬁnn@example.com", True),
    ("ÖLAF@example.com", False),  # alone: it gets its key, and can log in from now on
    ("Ana@example.com", True),
]


def test_0002_keys_the_stored_rows_and_reports_the_ones_it_cannot(
    scratch_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrations.upgrade("auth", scratch_url, "auth_0001")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = {}
    for n, (email, could_log_in) in enumerate(ROWS):
        ids[email] = uuid.uuid4()
        run(
            scratch_url,
            "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, 'x', $3)",
            ids[email],
            email,
            start + timedelta(minutes=n),
        )
        [row] = run(scratch_url, "SELECT lower($1::text) AS pg_lower", email)
        assert (row["pg_lower"] == email.lower()) is could_log_in, email

    with caplog.at_level(logging.WARNING):
        migrations.upgrade("auth", scratch_url)

    keys = {
        row["id"]: row["email_key"] for row in run(scratch_url, "SELECT id, email_key FROM users")
    }
    assert keys == {
        ids["ÄNNE@example.com"]: None,
        ids["änne@example.com"]: "änne@example.com",
        ids["ÄöX@example.com"]: "äöx@example.com",
        ids["äÖX@example.com"]: None,
        ids["FINN@example.com"]: "finn@example.com",
        ids["ﬁnn@example.com"]: None,
        ids["ÖLAF@example.com"]: "ölaf@example.com",
        ids["Ana@example.com"]: "ana@example.com",
    }
    [warning] = [r.getMessage() for r in caplog.records if "auth_0002" in r.getMessage()]
    for loser in ("ÄNNE@example.com", "äÖX@example.com", "ﬁnn@example.com"):
        assert str(ids[loser]) in warning
    assert "@" not in warning  # ids only, never an email
    assert schema_diff(scratch_url) == []

    # and back: the old index takes the same rows again
    command.downgrade(migrations.alembic_config("auth", scratch_url), "auth_0001")
    assert len(run(scratch_url, "SELECT id FROM users")) == len(ROWS)


def test_0005_makes_the_oldest_active_account_the_admin_of_an_existing_instance(
    scratch_url: str,
) -> None:
    migrations.upgrade("auth", scratch_url, "auth_0004")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Inserted out of age order; the very oldest is disabled and could not administer.
    ages = {
        "newer@example.com": 1,
        "oldest@example.com": 0,
        "newest@example.com": 2,
        "disabled@example.com": -1,
    }
    for email, minutes in ages.items():
        run(
            scratch_url,
            "INSERT INTO users (id, email, email_key, password_hash, created_at, is_active) "
            "VALUES ($1, $2, $2, 'x', $3, $4)",
            uuid.uuid4(),
            email,
            start + timedelta(minutes=minutes),
            email != "disabled@example.com",
        )

    migrations.upgrade("auth", scratch_url)

    roles = {row["email"]: row["role"] for row in run(scratch_url, "SELECT email, role FROM users")}
    assert roles == {
        "oldest@example.com": "admin",
        "newer@example.com": "user",
        "newest@example.com": "user",
        "disabled@example.com": "user",
    }
