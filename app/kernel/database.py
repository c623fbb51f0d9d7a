"""One async engine per module, each with its own URL and role."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.kernel.settings import DatabaseSettings


def create_engine(url: str, settings: DatabaseSettings | None = None) -> AsyncEngine:
    settings = settings or DatabaseSettings()
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No pre-ping: it costs a round trip per transaction on the redirect path; a dropped
        # connection is detected on use and the pool replaces it.
    )


def redact(url: str) -> str:
    """The URL with its password masked, for logs and `encurta config`: the one after the
    user name, and any `?password=` that the driver would also accept."""
    parsed = make_url(url)
    hidden = {key: "***" for key in parsed.query if "password" in key.lower()}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


async def asyncpg_connect(engine: AsyncEngine) -> asyncpg.Connection:
    """A plain asyncpg connection with the engine's credentials, for LISTEN and COPY."""
    url = engine.url
    return await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
    )


_CONNECTION_LOST = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as the driver's own, outside any transaction, for the hot paths
    (click groups, link lookups) where SQLAlchemy's statement machinery and its BEGIN and
    ROLLBACK cost more than the one statement. Each statement commits by itself.

    SQLAlchemy never sees the driver's errors, so it would hand a dead connection out again:
    on a lost connection this one is invalidated and its pooled siblings (likely as dead,
    after a restart or a failover) disposed of."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            yield driver
        except TimeoutError:
            # A statement cut short by its own timeout: this connection's state is unsure,
            # the server and the others are fine (TimeoutError is an OSError: caught first).
            await conn.invalidate()
            raise
        except _CONNECTION_LOST:
            await conn.invalidate()
            await engine.dispose()
            raise
