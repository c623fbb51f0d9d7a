"""A receiver on loopback, and an app whose webhooks may deliver to it, quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.modules.webhooks import WebhooksSettings
from tests.conftest import AppFactory
from tests.support.accounts import Account, new_account
from tests.support.receiver import Receiver

FAST = WebhooksSettings(
    allow_private_targets=True,
    retry_schedule_seconds=[0.05, 0.05, 0.05],
    poll_seconds=0.02,
    click_batch_seconds=0.2,
    timeout_seconds=2.0,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
async def client(app_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(webhooks=FAST) as client:
        yield client


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await new_account(client, "owner@example.com")


async def add_webhook(
    client: httpx.AsyncClient, account: Account, url: str, events: list[str] | None = None
) -> dict[str, object]:
    events = events or ["link.created", "link.updated", "link.deleted", "link.clicked"]
    made = await client.post(
        "/api/webhooks", json={"url": url, "events": events}, headers=account.headers
    )
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body
