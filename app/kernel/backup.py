"""One module's database to a file and back, with PostgreSQL's own pg_dump and pg_restore.

pg_dump reads a whole database in one snapshot (one REPEATABLE READ transaction), online,
so each module's dump is consistent by itself while `encurta serve` keeps writing. Dumps
are in pg_dump's custom format without owners or grants: restored as the module's own role
(in a fresh embedded server, a role with the same name but a new password; on a configured
server, whichever role its URL names), everything belongs to that role.

The password reaches the tools through PGPASSWORD in their environment, never their command
line (which `ps` shows to every user), and no error message here repeats a URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.kernel.embedded import client_tool
from app.kernel.migrations import version_table

_CHUNK = 1 << 20
# libpq's variables that could point a tool elsewhere than the URL says (PGSSLROOTCERT and
# the like are left alone: they only say how to reach it).
_CONNECTION_VARIABLES = frozenset(
    {
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
    }
)


class BackupError(RuntimeError):
    """A dump or a restore failed; the message names the module and the file, no secret."""


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """The connection options of a SQLAlchemy URL for libpq's tools: arguments without the
    password, and an environment with it (and TLS, when the URL asks for it)."""
    parsed = make_url(url)
    argv = [
        f"--host={parsed.host or '127.0.0.1'}",
        f"--port={parsed.port or 5432}",
        f"--username={parsed.username or ''}",
        "--no-password",  # never a prompt: a wrong password fails at once
    ]
    env = {k: v for k, v in os.environ.items() if k not in _CONNECTION_VARIABLES}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    ssl = parsed.query.get("sslmode") or parsed.query.get("ssl")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = {"true": "require"}.get(ssl, ssl)
    return argv, env


def _dbname(url: str) -> str:
    return str(make_url(url).database or "")


def _asyncpg_args(url: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host,
        "port": parsed.port,
        "database": parsed.database,
    }


def _run(module: str, argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(  # noqa: S603 - argv built here from the PostgreSQL tools
        argv, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line][:5]
        raise BackupError(f"{module}: {what} failed: " + " / ".join(lines))


def dump(module: str, url: str, target: Path) -> None:
    """The module's database, in one snapshot, to `target` (custom format, compressed)."""
    argv, env = _libpq(url)
    _run(
        module,
        [
            str(client_tool("pg_dump")),
            *argv,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={target}",
            f"--dbname={_dbname(url)}",
        ],
        env,
        f"pg_dump to {target}",
    )


def restore(module: str, url: str, source: Path) -> None:
    """`source` into the module's (empty) database, all of it or nothing: one transaction,
    stopped at the first error."""
    argv, env = _libpq(url)
    _run(
        module,
        [
            str(client_tool("pg_restore")),
            *argv,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_dbname(url)}",
            str(source),
        ],
        env,
        f"pg_restore of {source}",
    )


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(**_asyncpg_args(url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def revision(module: str, url: str) -> list[str]:
    """The module's Alembic revision(s), from its version table; none if it has none."""
    table = version_table(module)
    if asyncio.run(_fetch(url, "SELECT 1 WHERE to_regclass($1) IS NOT NULL", table)):
        rows = asyncio.run(_fetch(url, f'SELECT version_num FROM "{table}" ORDER BY 1'))  # noqa: S608
        return [row["version_num"] for row in rows]
    return []


def tables(url: str) -> list[str]:
    """The tables and sequences the connecting role can see outside PostgreSQL's own
    schemas: a database about to be restored into must have none."""
    rows = asyncio.run(
        _fetch(
            url,
            "SELECT n.nspname || '.' || c.relname AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' "
            "ORDER BY 1",
        )
    )
    return [row["name"] for row in rows]


def wipe(url: str) -> None:
    """Drop everything the module's role owns in its database (`--force`): its tables,
    sequences, types, and the version table, so the restore starts from nothing."""

    async def drop() -> None:
        conn = await asyncpg.connect(**_asyncpg_args(url))
        try:
            await conn.execute("DROP OWNED BY CURRENT_USER")
        finally:
            await conn.close()

    asyncio.run(drop())


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()
