"""Deliveries: one per event and webhook, signed, retried under one webhook-id, parked
after the last attempt and replayed; private receivers refused; clicks batched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.modules.webhooks import worker
from app.modules.webhooks.worker import DeliveryWorker
from tests.conftest import AppFactory
from tests.modules.shortener.helpers import follow
from tests.modules.webhooks.conftest import FAST, add_webhook
from tests.support.accounts import Account, new_account, shorten
from tests.support.receiver import Receiver
from tests.support.waiting import eventually


async def deliveries(
    client: httpx.AsyncClient, account: Account, webhook: dict[str, Any], **query: Any
) -> list[dict[str, Any]]:
    page = await client.get(
        f"/api/webhooks/{webhook['id']}/deliveries", params=query, headers=account.headers
    )
    assert page.status_code == 200, page.text
    found: list[dict[str, Any]] = page.json()["items"]
    return found


async def test_each_event_type_reaches_the_receiver_signed(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url)
    secret = str(webhook["secret"])

    link = await shorten(client, owner, "https://example.com/a", code="evt")
    changed = await client.patch("/api/links/evt", json={"title": "A title"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    await follow(client, "evt")
    await eventually(lambda: receiver.types(secret)["link.clicked"] == 1, what="the click")
    assert (await client.delete("/api/links/evt", headers=owner.headers)).status_code == 204

    types = await eventually(
        lambda: receiver.types(secret),
        lambda seen: seen["link.deleted"] == 1,
        "every event delivered",
    )
    assert types == {"link.created": 1, "link.updated": 1, "link.clicked": 1, "link.deleted": 1}
    payloads = {p["type"]: p for _, p in receiver.accepted(secret)}
    assert payloads["link.created"]["data"]["code"] == "evt"
    assert payloads["link.created"]["data"]["url"] == link["url"]
    assert payloads["link.updated"]["data"]["title"] == "A title"
    (click,) = payloads["link.clicked"]["data"]["clicks"]
    assert click["code"] == "evt" and payloads["link.clicked"]["data"]["omitted"] == 0
    assert "ip" not in str(sorted(click)) and "203.0.113" not in str(payloads)
    listed = await eventually(
        lambda: deliveries(client, owner, webhook),
        lambda found: {d["status"] for d in found} == {"delivered"},
        "every delivery recorded as delivered",
    )
    assert {d["id"] for d in listed} == {r.webhook_id for r in receiver.snapshot()}


async def test_a_receiver_that_fails_three_times_gets_the_delivery_under_one_id(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    receiver.fail_next = 3

    await shorten(client, owner, "https://example.com/retry")

    (delivery,) = await eventually(
        lambda: deliveries(client, owner, webhook, status="delivered"), what="delivered"
    )
    accepted = receiver.accepted(str(webhook["secret"]))
    requests = receiver.snapshot()
    assert [r.status for r in requests] == [500, 500, 500, 200]
    assert len({r.webhook_id for r in requests}) == 1
    assert delivery["id"] == accepted[0][0]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    assert delivery["next_attempt_at"] is None


async def test_a_delivery_is_parked_after_the_last_attempt_and_replayed(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    receiver.fail_next = 1 + len(FAST.retry_schedule_seconds)
    receiver.fail_status = 503

    await shorten(client, owner, "https://example.com/parked")

    (parked,) = await eventually(
        lambda: deliveries(client, owner, webhook, status="parked"), what="parked"
    )
    assert parked["attempts"] == 4 and parked["last_status_code"] == 503
    assert parked["last_error"].startswith("HTTP 503: ok")
    replayed = await client.post(
        f"/api/webhooks/{webhook['id']}/deliveries/{parked['id']}/replay", headers=owner.headers
    )
    assert replayed.status_code == 202, replayed.text
    (done,) = await eventually(
        lambda: deliveries(client, owner, webhook, status="delivered"), what="replayed"
    )
    assert done["id"] == parked["id"]
    assert {r.webhook_id for r in receiver.snapshot()} == {parked["id"]}
    again = await client.post(
        f"/api/webhooks/{webhook['id']}/deliveries/{parked['id']}/replay", headers=owner.headers
    )
    assert again.status_code == 409


async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(
    app_client: AppFactory, receiver: Receiver
) -> None:
    strict = FAST.model_copy(update={"allow_private_targets": False})
    async with app_client(webhooks=FAST) as client:
        owner = await new_account(client, "owner@example.com")
        # Made while private targets were allowed; then the operator forbids them.
        webhook = await add_webhook(
            client, owner, f"http://localhost:{receiver.port}/hook", ["link.created"]
        )
    async with app_client(webhooks=strict) as client:
        await shorten(client, owner, "https://example.com/ssrf")
        (parked,) = await eventually(
            lambda: deliveries(client, owner, webhook, status="parked"), what="parked"
        )

    assert parked["last_error"] == "refused: the host resolves to a private or local address"
    assert parked["last_status_code"] is None
    assert receiver.snapshot() == []


async def test_clicks_leave_in_batches_of_at_most_the_configured_size(
    app_client: AppFactory, receiver: Receiver
) -> None:
    batched = FAST.model_copy(update={"click_batch_size": 3, "click_batch_seconds": 1.0})
    async with app_client(webhooks=batched) as client:
        owner = await new_account(client, "owner@example.com")
        webhook = await add_webhook(client, owner, receiver.url, ["link.clicked"])
        await shorten(client, owner, "https://example.com/viral", code="viral")
        for _ in range(7):
            await follow(client, "viral")
        accepted = await eventually(
            lambda: receiver.accepted(str(webhook["secret"])),
            lambda seen: sum(len(p["data"]["clicks"]) + p["data"]["omitted"] for _, p in seen) == 7,
            "every click told of",
        )

    assert all(p["type"] == "link.clicked" for _, p in accepted)
    assert all(len(p["data"]["clicks"]) <= 3 for _, p in accepted)
    # Seven clicks in (most likely) one interval: far fewer requests than clicks.
    assert len(accepted) < 7
    ids = [c["click_id"] for _, p in accepted for c in p["data"]["clicks"]]
    assert len(ids) == len(set(ids))


async def test_a_deleted_webhook_gets_nothing_more(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    other = await add_webhook(client, owner, receiver.url, ["link.deleted"])
    await client.delete(f"/api/webhooks/{webhook['id']}", headers=owner.headers)

    await shorten(client, owner, "https://example.com/x", code="gone")
    await client.delete("/api/links/gone", headers=owner.headers)

    await eventually(lambda: receiver.types(str(other["secret"]))["link.deleted"] == 1)
    assert [r.headers["webhook-id"] for r in receiver.snapshot()] == [
        d["id"] for d in await deliveries(client, owner, other)
    ]


async def test_deliveries_come_a_page_at_a_time_newest_first(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    for n in range(3):
        await shorten(client, owner, f"https://example.com/{n}")
    every = await eventually(
        lambda: deliveries(client, owner, webhook, status="delivered"),
        lambda found: len(found) == 3,
        "three deliveries",
    )

    path = f"/api/webhooks/{webhook['id']}/deliveries"
    first = (await client.get(path, params={"limit": 2}, headers=owner.headers)).json()
    assert [d["id"] for d in first["items"]] == [d["id"] for d in every[:2]]
    second = await client.get(
        path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=owner.headers
    )
    assert [d["id"] for d in second.json()["items"]] == [every[2]["id"]]
    assert second.json()["next_cursor"] is None
    created = [d["created_at"] for d in every]
    assert created == sorted(created, reverse=True)
    for query, field in [
        ({"cursor": "nope"}, "cursor"),
        ({"cursor": "00000000-0000-0000-0000-000000000000"}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
    ]:
        bad = await client.get(path, params=query, headers=owner.headers)
        assert bad.status_code == 422, (query, bad.text)
        assert [e["field"] for e in bad.json()["errors"]] == [field]


async def test_clicks_leave_once_per_interval_whichever_process_flushes(
    app_client: AppFactory, receiver: Receiver, database_urls: dict[str, str]
) -> None:
    hourly = FAST.model_copy(update={"click_batch_seconds": 3600.0})
    async with app_client(webhooks=hourly) as client:
        owner = await new_account(client, "owner@example.com")
        webhook = await add_webhook(client, owner, receiver.url, ["link.clicked"])
        await shorten(client, owner, "https://example.com/two", code="two")
        await follow(client, "two")
        engine = create_async_engine(database_urls["webhooks"])
        try:
            # The click may come before link_created (clicks take a faster lane): it waits.
            await eventually(lambda: _count(engine, "link_owners"), lambda n: n == 1)
            pending = await eventually(
                lambda: _count(engine, "pending_clicks"), lambda n: n == 1, "the click waits"
            )
            # Two processes' workers, one after the other within the interval.
            first = await DeliveryWorker(engine, hourly).flush_clicks()
            await follow(client, "two")
            await eventually(lambda: _count(engine, "pending_clicks"), lambda n: n == 1)
            second = await DeliveryWorker(engine, hourly).flush_clicks()
        finally:
            await engine.dispose()
        sent = await eventually(
            lambda: deliveries(client, owner, webhook, status="delivered"), what="sent"
        )

    assert (pending, first, second) == (1, 1, 0)
    assert len(sent) == 1, sent


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608


async def test_a_slow_receiver_does_not_hold_up_another_accounts_deliveries(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    """Deliveries went out in rounds, each waiting for its slowest: one receiver that
    answers at the last moment (or a tarpit) paced every account's deliveries to its own."""
    other = await new_account(client, "other@example.com")
    with Receiver() as slow:
        slow.delay = 1.8  # within FAST's read timeout (2 s)
        held = await add_webhook(client, owner, slow.url, ["link.created"])
        await add_webhook(client, other, receiver.url, ["link.created"])
        await shorten(client, owner, "https://example.com/slow")
        await eventually(lambda: slow.snapshot(), what="the slow receiver has its request")

        await shorten(client, other, "https://example.com/quick")
        await eventually(lambda: receiver.snapshot(), what="the other account's delivery")
        in_flight = await deliveries(client, owner, held)

        assert [d["status"] for d in in_flight] == ["pending"]  # still with the slow one
        await eventually(
            lambda: deliveries(client, owner, held, status="delivered"), what="the slow one"
        )


async def test_more_clicks_than_one_take_leave_in_one_flush(
    app_client: AppFactory,
    receiver: Receiver,
    database_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A take holds at most `_CLICKS_PER_FLUSH` clicks: one take an interval let a flood
    of clicks (one account clicking its own links) put every account's behind for good."""
    monkeypatch.setattr(worker, "_CLICKS_PER_FLUSH", 2)
    hourly = FAST.model_copy(update={"click_batch_seconds": 3600.0})
    async with app_client(webhooks=hourly) as client:
        owner = await new_account(client, "owner@example.com")
        webhook = await add_webhook(client, owner, receiver.url, ["link.clicked"])
        await shorten(client, owner, "https://example.com/many", code="many")
        for _ in range(5):
            await follow(client, "many")
        engine = create_async_engine(database_urls["webhooks"])
        try:
            await eventually(lambda: _count(engine, "link_owners"), lambda n: n == 1)
            await eventually(lambda: _count(engine, "pending_clicks"), lambda n: n == 5)
            flushed = await DeliveryWorker(engine, hourly).flush_clicks()
            left = await _count(engine, "pending_clicks")
        finally:
            await engine.dispose()
        accepted = await eventually(
            lambda: receiver.accepted(str(webhook["secret"])),
            lambda seen: sum(len(p["data"]["clicks"]) for _, p in seen) == 5,
            "every click sent",
        )

    assert (flushed, left) == (5, 0)
    assert len(accepted) == 3  # 2 + 2 + 1
