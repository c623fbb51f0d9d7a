"""An event redelivered (by the bus, or after the inbox forgot it) is one delivery."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx

from app.bus.envelope import Envelope
from app.contracts.shortener import LinkCreated
from tests.conftest import asyncpg_dsn, consumer_of
from tests.modules.webhooks.conftest import add_webhook
from tests.modules.webhooks.test_worker import deliveries
from tests.support.accounts import Account
from tests.support.receiver import Receiver
from tests.support.waiting import eventually


async def test_a_redelivered_event_makes_one_delivery_under_one_id(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver, database_urls: dict[str, str]
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    event = LinkCreated(
        code="twice",
        link_id=owner.id,
        target_url="https://example.com/",
        owner_id=owner.id,
        created_at=datetime.now(UTC),
        expires_at=None,
    )
    inbox = consumer_of(client, "webhooks")

    await inbox.deliver([Envelope.wrap(event)])
    await inbox.deliver([Envelope.wrap(event)])  # the bus redelivers
    (delivery,) = await eventually(
        lambda: deliveries(client, owner, webhook, status="delivered"), what="delivered"
    )
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["webhooks"]))
    try:  # the inbox forgot it (its TTL ran out)
        await conn.execute("DELETE FROM processed_events")
    finally:
        await conn.close()
    await inbox.deliver([Envelope.wrap(event)])

    assert [d["id"] for d in await deliveries(client, owner, webhook)] == [delivery["id"]]
    assert [r.webhook_id for r in receiver.snapshot()] == [delivery["id"]]


async def test_events_of_links_without_an_owner_or_of_other_accounts_make_none(
    client: httpx.AsyncClient, owner: Account, receiver: Receiver
) -> None:
    webhook = await add_webhook(client, owner, receiver.url, ["link.created"])
    inbox = consumer_of(client, "webhooks")
    for owner_id in (None, owner.id.__class__(int=owner.id.int ^ 1)):
        await inbox.deliver(
            [
                Envelope.wrap(
                    LinkCreated(
                        code=f"c{owner_id is None}",
                        link_id=owner.id,
                        target_url="https://example.com/",
                        owner_id=owner_id,
                        created_at=datetime.now(UTC),
                        expires_at=None,
                    )
                )
            ]
        )

    assert await deliveries(client, owner, webhook) == []
