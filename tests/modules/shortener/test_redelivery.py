"""Acceptance: the same events delivered twice (replay all outbox rows) change no count.

The background relays are stopped before any event is written, so every publication here is
one of ours and `drain()` tells exactly how many rows went out.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import asyncpg_dsn, relay_of
from tests.modules.shortener.helpers import (
    CHROME,
    CLICKED,
    CREATED,
    DELETED,
    FIREFOX,
    SAFARI,
    ShortenerDb,
    click_count,
    follow,
    stop_background_relays,
)
from tests.support.accounts import PASSWORD, Account, new_account, shorten


async def link_stats(client: httpx.AsyncClient, account: Account, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/stats/{code}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return {"totals": body["totals"], "unique_clicks": body["unique_clicks"]}


async def replay_all(database_urls: dict[str, str], module: str) -> int:
    """Mark every outbox row of the module unsent, as an operator replaying the outbox would."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls[module]))
    try:
        status = await conn.execute("UPDATE outbox SET sent_at = NULL")
    finally:
        await conn.close()
    return int(status.split()[-1])


async def test_replaying_every_outbox_row_changes_no_count(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    await stop_background_relays(client)
    code = (await shorten(client, ana, "https://example.com/replayed"))["code"]
    for user_agent in (CHROME, FIREFOX, SAFARI, CHROME, FIREFOX, CHROME):
        await follow(client, code, user_agent=user_agent)
    n = 6

    assert await relay_of(client, "shortener").drain() == 1 + n
    before = {
        "stats": await link_stats(client, ana, code),
        "click_count": await click_count(client, ana, code),
    }
    assert before == {
        "stats": {"totals": {"all": n, "human": n, "bot": 0}, "unique_clicks": 3},
        "click_count": n,
    }

    assert await replay_all(database_urls, "shortener") == 1 + n
    assert await relay_of(client, "shortener").drain() == 1 + n

    db = ShortenerDb(database_urls)
    rows = await db.outbox()
    assert sorted(row["type"] for row in rows) == sorted([CREATED] + [CLICKED] * n)
    # Every row went out a second time: sent again, and counted as a second attempt.
    assert all(row["sent_at"] is not None and row["attempts"] == 2 for row in rows), rows
    after = {
        "stats": await link_stats(client, ana, code),
        "click_count": await click_count(client, ana, code),
    }
    assert after == before


async def test_replaying_an_account_deletion_deletes_nothing_twice(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await stop_background_relays(client)
    anas = (await shorten(client, ana, "https://example.com/ana"))["code"]
    bos = (await shorten(client, bo, "https://example.com/bo"))["code"]
    await follow(client, anas)
    response = await client.request(
        "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=bo.headers
    )
    assert response.status_code == 204
    assert await relay_of(client, "auth").drain() == 2  # access_changed, user_deleted
    assert await relay_of(client, "shortener").drain() == 4  # 2 created, 1 click, 1 deleted
    stats_before = await link_stats(client, ana, anas)

    assert await replay_all(database_urls, "auth") == 2
    assert await replay_all(database_urls, "shortener") == 4
    assert await relay_of(client, "auth").drain() == 2
    assert await relay_of(client, "shortener").drain() == 4

    db = ShortenerDb(database_urls)
    assert [row["payload"]["code"] for row in await db.outbox(DELETED)] == [bos]
    assert (await client.get(f"/{bos}")).status_code == 410
    assert (await client.get(f"/{anas}", headers={"User-Agent": CHROME})).status_code == 302
    assert await link_stats(client, ana, anas) == stats_before
    assert await click_count(client, ana, anas) == 2
