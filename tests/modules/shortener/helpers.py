"""Steps the shortener tests repeat: redirects, click counts, and looks into the
shortener's own database (through asyncpg, as an operator would)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from tests.conftest import asyncpg_dsn, runtime_of
from tests.support.accounts import Account

CREATED = "shortener.link_created.v1"
DELETED = "shortener.link_deleted.v1"
CLICKED = "shortener.link_clicked.v1"

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def follow(
    client: httpx.AsyncClient, code: str, user_agent: str = CHROME, **headers: str
) -> httpx.Response:
    """GET /{code} as a browser would (the redirect is not followed): one click."""
    response = await client.get(f"/{code}", headers={"User-Agent": user_agent, **headers})
    assert response.status_code == 302, response.text
    return response


async def click_count(client: httpx.AsyncClient, account: Account, code: str) -> int:
    response = await client.get(f"/api/links/{code}", headers=account.headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["click_count"]
    return count


async def stop_background_relays(client: httpx.AsyncClient) -> None:
    """From here on only the test publishes (`relay.drain()`), so a drain is a barrier: with
    the background relay running, a drain skips the rows that relay has leased and
    returns before they are delivered. Call it once the app has served a
    request: stopping a relay that is still opening its LISTEN connection leaves an asyncpg
    future with an unretrieved error."""
    for relay in runtime_of(client).relays:
        await relay.stop()


class ShortenerDb:
    """Reads (and, to set up a case, writes) the shortener's own database."""

    def __init__(self, database_urls: dict[str, str]) -> None:
        self._dsn = asyncpg_dsn(database_urls["shortener"])

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self._dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def value(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self._dsn)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    async def execute(self, query: str, *args: Any) -> str:
        conn = await asyncpg.connect(self._dsn)
        try:
            return str(await conn.execute(query, *args))
        finally:
            await conn.close()

    async def outbox(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Outbox rows, oldest first, each with `payload` decoded and `row_json`: the whole
        row as PostgreSQL renders it, for searching every column at once."""
        rows = await self.fetch(
            "SELECT id, event_id, type, key, payload::text AS payload, sent_at, attempts, "
            "row_to_json(outbox)::text AS row_json FROM outbox "
            "WHERE $1::text IS NULL OR type = $1 ORDER BY id",
            event_type,
        )
        return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]

    async def url_count(self) -> int:
        count: int = await self.value("SELECT count(*) FROM urls")
        return count
