"""Fixtures: one real embedded PostgreSQL for the whole run, a fresh app for each test.

The server runs with fsync off (tests only); each module gets its own database and role, as
in production, and every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.bus.inbox import Consumer
from app.bus.relay import OutboxRelay
from app.config import Settings
from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.main import Runtime, create_app
from app.modules.auth.settings import Argon2Settings, AuthSettings
from app.registry import NAMES

# Cheap argon2 parameters: the tests exercise the flow, not the cost.
FAST_ARGON2 = Argon2Settings(time_cost=1, memory_cost_kib=64, parallelism=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reaches the real PostgreSQL is an integration test, wherever it lives."""
    for item in items:
        if "embedded_postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _no_operator_settings() -> Iterator[None]:
    """The developer's own ENCURTA_* variables must not leak into the tests."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ENCURTA_")}
    yield
    os.environ.update(saved)


def traversable_tmp(prefix: str) -> Path:
    """A temporary folder the unprivileged PostgreSQL user can enter (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    root = traversable_tmp("encurta-test-pg-")
    server = EmbeddedPostgres(root / "postgres", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_urls(embedded_postgres: EmbeddedPostgres) -> dict[str, str]:
    urls = asyncio.run(embedded_postgres.provision(list(NAMES)))
    for module, url in urls.items():
        migrations.upgrade(module, url)
    return urls


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def truncate_all(database_urls: dict[str, str]) -> None:
    for url in database_urls.values():
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT LIKE '%alembic_version'"
            )
            if tables:
                names = ", ".join(f'"{row["tablename"]}"' for row in tables)
                await conn.execute(f"TRUNCATE {names} CASCADE")
        finally:
            await conn.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth=AuthSettings(argon2=FAST_ARGON2))


AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def app_client(
    database_urls: dict[str, str], settings: Settings
) -> AsyncIterator[AppFactory]:
    """Builds an app (with optional settings changes) and an HTTP client bound to it."""
    await truncate_all(database_urls)

    @asynccontextmanager
    async def build(
        client_ip: str = "203.0.113.7", **changes: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update=changes), database_urls)
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client,
        ):
            yield client

    yield build


def runtime_of(client: httpx.AsyncClient) -> Runtime:
    """The composition root's runtime behind a client made by `app_client`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    runtime: Runtime = transport.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def consumer_of(client: httpx.AsyncClient, module: str) -> Consumer:
    return next(c for c in runtime_of(client).consumers if c.name == module)


def relay_of(client: httpx.AsyncClient, module: str) -> OutboxRelay:
    return next(r for r in runtime_of(client).relays if r.module == module)


@pytest.fixture
async def client(app_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as client:
        yield client
