"""What analytics knows of a link follows its changes, whatever order the events come in."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from app.contracts.shortener import LinkUpdated
from tests.conftest import asyncpg_dsn
from tests.modules.analytics.helpers import created, deleted, feed, link_id
from tests.support.accounts import Account


def updated(code: str, owner: Account, version: int, **changes: Any) -> LinkUpdated:
    fields: dict[str, Any] = {
        "code": code,
        "link_id": link_id(code),
        "owner_id": owner.id,
        "version": version,
        "target_url": f"https://example.com/{code}/v{version}",
        "title": f"version {version}",
        "tags": (),
        "expires_at": None,
    }
    return LinkUpdated(**{**fields, **changes})


async def known(database_url: str, code: str) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT target_url, title, version, created_at IS NOT NULL AS created, "
            "deleted_at IS NOT NULL AS dead FROM url_creations WHERE code = $1",
            code,
        )
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


async def test_the_newest_change_wins_in_any_order_and_the_creation_fills_in_the_rest(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    # Over Kafka each event type is a topic: the changes can overtake the creation and
    # each other.
    await feed(client, updated("moved", owner, 3))
    await feed(client, updated("moved", owner, 2))
    await feed(client, created("moved", owner, title="version 1"))

    assert await known(database_urls["analytics"], "moved") == {
        "target_url": "https://example.com/moved/v3",
        "title": "version 3",
        "version": 3,
        "created": True,
        "dead": False,
    }


async def test_a_change_in_order_replaces_the_creation_and_a_redelivery_changes_nothing(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    change = updated("fixed", owner, 2)
    await feed(client, created("fixed", owner), change)
    await feed(client, change)

    assert await known(database_urls["analytics"], "fixed") == {
        "target_url": "https://example.com/fixed/v2",
        "title": "version 2",
        "version": 2,
        "created": True,
        "dead": False,
    }


async def test_a_change_after_the_deletion_does_not_bring_the_target_back(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    await feed(client, created("gone", owner))
    await feed(client, deleted("gone", owner))
    await feed(client, updated("gone", owner, 2))

    row = await known(database_urls["analytics"], "gone")
    assert (row["target_url"], row["title"], row["dead"]) == (None, None, True)
