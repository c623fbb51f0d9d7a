"""Events and requests the analytics tests repeat. Events go straight into the analytics
consumer, as the shortener's relay would deliver them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from app.bus.envelope import Envelope
from app.contracts.auth import UserDeleted
from app.contracts.base import IntegrationEvent
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted
from tests.conftest import asyncpg_dsn, consumer_of
from tests.support.accounts import Account

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # 00:00 UTC on a Monday

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def link_id(code: str) -> UUID:
    """One stable link id per code, so created and deleted events agree."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"encurta:{code}")


def created(code: str, owner: Account | UUID | None, **changes: Any) -> LinkCreated:
    owner_id = owner.id if isinstance(owner, Account) else owner
    fields: dict[str, Any] = {
        "code": code,
        "link_id": link_id(code),
        "target_url": f"https://example.com/{code}",
        "owner_id": owner_id,
        "created_at": MONDAY,
        "expires_at": None,
    }
    return LinkCreated(**{**fields, **changes})


def deleted(code: str, owner: Account) -> LinkDeleted:
    return LinkDeleted(code=code, link_id=link_id(code), owner_id=owner.id)


def user_deleted(account: Account) -> UserDeleted:
    return UserDeleted(user_id=account.id)


def click(
    code: str,
    at: datetime = MONDAY,
    visitor: str = "visitor-1",
    *,
    user_agent: str | None = CHROME_WINDOWS,
    referer: str | None = None,
    country: str | None = "PT",
    city: str | None = None,
    is_bot: bool = False,
    click_id: UUID | None = None,
) -> LinkClicked:
    return LinkClicked(
        code=code,
        occurred_at=at,
        click_id=click_id or uuid.uuid4(),
        ip_anonymized="203.0.113.0",
        country=country,
        city=city,
        user_agent=user_agent,
        referer=referer,
        visitor_hash=visitor,
        is_bot=is_bot,
        bot_reason="crawler user agent" if is_bot else None,
    )


async def feed(client: httpx.AsyncClient, *events: IntegrationEvent) -> None:
    """Deliver the events as one batch, as the relay does."""
    await consumer_of(client, "analytics").deliver([Envelope.wrap(event) for event in events])


async def get_stats(
    client: httpx.AsyncClient, account: Account | None, code: str, **params: Any
) -> httpx.Response:
    headers = account.headers if account else {}
    query = {("from" if key == "from_" else key): _param(value) for key, value in params.items()}
    return await client.get(f"/api/stats/{code}", params=query, headers=headers)


async def stats(
    client: httpx.AsyncClient, account: Account, code: str, **params: Any
) -> dict[str, Any]:
    response = await get_stats(client, account, code, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _param(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def top(body: dict[str, Any], name: str) -> dict[str, int]:
    return {entry["value"]: entry["clicks"] for entry in body["top"][name]}


async def stored_rows(database_url: str, code: str) -> dict[str, int]:
    """How many rows each analytics table holds for the link: proof that data is gone."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE code = $1", code)  # noqa: S608
            for table in ("clicks", "visitors", "url_stats", "url_dimension_stats")
        }
    finally:
        await conn.close()


async def link_rows(database_url: str) -> dict[str, tuple[UUID | None, str | None, bool]]:
    """Each code in `url_creations`: its owner, its target, and whether it is a tombstone."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT code, owner_id, target_url, deleted_at IS NOT NULL AS dead FROM url_creations"
        )
    finally:
        await conn.close()
    return {row["code"]: (row["owner_id"], row["target_url"], row["dead"]) for row in rows}
