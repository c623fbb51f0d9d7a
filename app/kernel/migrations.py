"""Alembic, once for every module: one history and one version table per module.

Alembic's command API runs its own event loop, so async callers go through
`asyncio.to_thread(upgrade, ...)`. Alembic itself is imported only when a migration may
run: a start-up whose databases are all at their latest revision (`behind` says so, from
the version tables and the revision files alone) does without it.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, func, pool, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

_APP_ROOT = Path(__file__).resolve().parents[1]
_CHECK_TIMEOUT_SECONDS = 10.0


def migrations_root() -> Path:
    """`migrations/` beside the package in a checkout, `app/_migrations` in a wheel."""
    packaged = _APP_ROOT / "_migrations"
    return packaged if packaged.is_dir() else _APP_ROOT.parent / "migrations"


def version_table(module: str) -> str:
    return f"{module}_alembic_version"


def alembic_config(module: str, url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_root() / module))
    config.set_main_option("version_table", version_table(module))
    config.attributes["url"] = url
    return config


def upgrade(module: str, url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(module, url), revision)


def heads(module: str) -> frozenset[str] | None:
    """The module's head revisions, read from its revision files without importing them
    (they import alembic and the module's tables). None when a file does not say its
    `revision` and `down_revision` plainly: then only alembic can tell."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((migrations_root() / module / "versions").glob("*.py")):
        found = _revision_of(path)
        if found is None:
            return None
        revision, down = found
        revisions.add(revision)
        parents.update(down)
    return frozenset(revisions - parents) or None


def revisions(module: str) -> frozenset[str] | None:
    """Every revision the module's history knows (None as for `heads`): a backup made at
    one of them can be migrated forward by this version."""
    found: set[str] = set()
    for path in sorted((migrations_root() / module / "versions").glob("*.py")):
        parsed = _revision_of(path)
        if parsed is None:
            return None
        found.add(parsed[0])
    return frozenset(found)


def _revision_of(path: Path) -> tuple[str, tuple[str, ...]] | None:
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        target, value = _assignment(node)
        if target in ("revision", "down_revision") and value is not None:
            try:
                values[target] = ast.literal_eval(value)
            except ValueError:
                return None
    revision, down = values.get("revision"), values.get("down_revision", ...)
    if not isinstance(revision, str) or down is ...:
        return None
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return revision, tuple(down)
    return None


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


async def _at_head(module: str, url: str) -> bool:
    expected = heads(module)
    if expected is None:
        return False
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            result = await connection.exec_driver_sql(
                f'SELECT version_num FROM "{version_table(module)}"'  # noqa: S608 - fixed name
            )
            current = frozenset(row[0] for row in result)
    except Exception:  # noqa: BLE001 - no table, no connection...: let alembic decide and say
        return False
    finally:
        await engine.dispose()
    return current == expected


def behind(urls: Mapping[str, str]) -> list[str]:
    """The modules whose database is not at its latest revision (or cannot be checked),
    checked concurrently, in the order given."""

    async def check() -> list[bool]:
        return await asyncio.gather(*(_at_head(name, url) for name, url in urls.items()))

    return [name for name, ok in zip(urls, asyncio.run(check()), strict=True) if not ok]


def migration_lock(module: str) -> int:
    """The module's advisory lock key: a stable signed 64-bit number from its name."""
    digest = hashlib.sha256(f"encurta migrations {module}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def run_env(metadata: MetaData, module: str) -> None:
    """The body of every module's `env.py`: online migrations through asyncpg.

    The URL comes from `encurta migrate`, or, for the bare `alembic -n MODULE` command
    developers use, from `ENCURTA_<MODULE>__DATABASE_URL`.
    """
    from alembic import context

    config = context.config
    url = config.attributes.get("url") or os.environ.get(f"ENCURTA_{module.upper()}__DATABASE_URL")
    if not url:
        raise RuntimeError(f"no database URL: set ENCURTA_{module.upper()}__DATABASE_URL")
    table = config.get_main_option("version_table") or "alembic_version"

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=table,
            compare_type=True,
        )
        with context.begin_transaction():
            # Replicas that start together would each build the tables, and all but one
            # fail on what another is still creating: the first to come migrates, the
            # others wait here until it commits, then find nothing left to do.
            connection.execute(select(func.pg_advisory_xact_lock(migration_lock(module))))
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(str(url), poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())
