"""Acceptance: the shortener's transactions stay short while analytics is slow.

In-process, publishing awaits the consumers, so a slow analytics consumer keeps the
shortener's relay inside `publish`. That must cost the shortener nothing: the relay claims
its rows with a lease that commits before publishing, so no transaction of the shortener's
database stays open (holding locks, pinning vacuum, taking a pooled connection) across the
wait. Analytics is made slow the way a busy database makes it slow: a session of the test
holds a lock on the tables its link_created and link_clicked handlers write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import httpx

from app.kernel.embedded import EmbeddedPostgres
from tests.conftest import asyncpg_dsn
from tests.modules.shortener.helpers import (
    CREATED,
    ShortenerDb,
    click_count,
    follow,
)
from tests.support.accounts import new_account, shorten
from tests.support.waiting import eventually

# A guard against a hang, never a measure of speed: the machine may be busy.
GUARD = 60.0
CLICKS = 5


async def blocked_by(conn: asyncpg.Connection) -> datetime | None:
    """When a session of the analytics database (the consumer's batch transaction) was
    found waiting for a lock `conn` holds, by the server's clock; None while none waits."""
    waiting: datetime | None = await conn.fetchval(
        "SELECT clock_timestamp() FROM pg_stat_activity WHERE datname = current_database() "
        "AND pg_backend_pid() = ANY(pg_blocking_pids(pid)) LIMIT 1"
    )
    return waiting


async def transactions_open_since(
    conn: asyncpg.Connection, since: datetime
) -> list[dict[str, Any]]:
    """The other sessions of `conn`'s database inside a transaction that began before
    `since`. Later ones (a lease renewal, a click group) are short and end on their own."""
    rows = await conn.fetch(
        "SELECT pid, usename, state, xact_start, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND xact_start IS NOT NULL AND xact_start < $1",
        since,
    )
    return [dict(row) for row in rows]


async def test_a_slow_analytics_consumer_holds_no_shortener_transaction_open(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    embedded_postgres: EmbeddedPostgres,
) -> None:
    ana = await new_account(client)
    # Superuser sessions: they see every session of the database, whatever its role.
    shortener = await asyncpg.connect(
        embedded_postgres.superuser_dsn(EmbeddedPostgres.database_name("shortener"))
    )
    analytics = await asyncpg.connect(
        embedded_postgres.superuser_dsn(EmbeddedPostgres.database_name("analytics"))
    )
    slow = analytics.transaction()
    await slow.start()
    try:
        # EXCLUSIVE blocks writes and lets reads through: the consumer waits inside its batch
        # transaction, on the first insert of its handler.
        await analytics.execute("LOCK TABLE url_creations, clicks IN EXCLUSIVE MODE")

        code = (await shorten(client, ana, "https://example.com/slow-analytics"))["code"]
        blocked_at = await eventually(
            lambda: blocked_by(analytics), what="the analytics consumer waits on the lock"
        )
        # The shortener goes on producing while analytics is stuck on the link_created:
        # each redirect returns once its click and outbox row are committed.
        for _ in range(CLICKS):
            await follow(client, code)
        assert await click_count(client, ana, code) == CLICKS

        assert await blocked_by(analytics), "analytics stopped waiting before the check"
        held_open = await transactions_open_since(shortener, blocked_at)
        assert held_open == [], f"shortener transactions open across the wait: {held_open}"
    finally:
        await slow.rollback()  # analytics catches up
        await analytics.close()
        await shortener.close()

    db = ShortenerDb(database_urls)
    await eventually(lambda: _all_sent(db), what="every outbox row sent")
    # The clicks were handed to the running relay (app/bus/handoff.py), which deletes such
    # rows once sent; the link's creation went the claimed way, and its row is kept.
    outbox = await db.outbox()
    assert [row["type"] for row in outbox] == [CREATED]
    # Exactly once in effect: analytics recorded each event once, the link's creation in its
    # inbox and each click in the clicks table, which is the inbox of clicks.
    processed = await _analytics_rows(
        database_urls, "SELECT event_id FROM processed_events WHERE type LIKE 'shortener.%'"
    )
    clicks = await _analytics_rows(
        database_urls, "SELECT click_id FROM clicks WHERE code = $1", code
    )
    assert [row["event_id"] for row in processed] == [outbox[0]["event_id"]]
    assert len({row["click_id"] for row in clicks}) == CLICKS
    response = await client.get(f"/api/stats/{code}", headers=ana.headers)
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["all"] == CLICKS


async def _all_sent(db: ShortenerDb) -> bool:
    unsent: int = await db.value("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return unsent == 0


async def _analytics_rows(
    database_urls: dict[str, str], query: str, *args: Any
) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
