"""A click that cannot be stored is parked; the rest of its batch counts; a replay after
the fix counts it once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from app.bus.envelope import Envelope
from app.config import Settings
from tests.conftest import AppFactory, asyncpg_dsn, consumer_of
from tests.modules.analytics.helpers import MONDAY, click, created, feed, stats
from tests.support.accounts import new_account

DAY = {"from_": MONDAY, "to": MONDAY + timedelta(days=1)}

_POISON = """
CREATE FUNCTION refuse_poisoned_click() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code = 'poisoned' THEN
        RAISE EXCEPTION 'a bug in click storage';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poisoned_click BEFORE INSERT ON clicks
    FOR EACH ROW EXECUTE FUNCTION refuse_poisoned_click();
"""
_FIX = "DROP FUNCTION refuse_poisoned_click() CASCADE"


@pytest.fixture
async def fast_retries(
    app_client: AppFactory, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    bus = settings.bus.model_copy(update={"backoff_base_seconds": 0.001, "max_attempts": 2})
    async with app_client(bus=bus) as client:
        yield client


@pytest.fixture
async def poisoned_storage(database_urls: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """A real failure inside the handler's transaction, for clicks of one code only."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
    await conn.execute(_POISON)
    try:
        yield conn
    finally:
        await conn.execute(_FIX.replace("DROP FUNCTION", "DROP FUNCTION IF EXISTS"))
        await conn.close()


async def test_a_poisoned_click_is_parked_and_counts_once_when_replayed_after_the_fix(
    fast_retries: httpx.AsyncClient, poisoned_storage: asyncpg.Connection
) -> None:
    client = fast_retries
    owner = await new_account(client, "owner@example.com")
    consumer = consumer_of(client, "analytics")
    await feed(client, created("healthy", owner), created("poisoned", owner))

    await feed(
        client,
        *(click("healthy", MONDAY, f"v{i}") for i in range(5)),
        click("poisoned", MONDAY, "ana"),
        *(click("healthy", MONDAY, f"w{i}") for i in range(5)),
    )

    parked = await consumer.parked()
    assert [(p.type, p.attempts) for p in parked] == [("shortener.link_clicked.v1", 2)]
    assert "a bug in click storage" in parked[0].error
    assert (await stats(client, owner, "healthy", **DAY))["totals"]["all"] == 10
    assert (await stats(client, owner, "poisoned", **DAY))["totals"]["all"] == 0

    assert await consumer.replay(parked[0].id) is False  # not fixed yet: stays parked
    await poisoned_storage.execute(_FIX)
    assert await consumer.replay(parked[0].id) is True

    assert (await stats(client, owner, "poisoned", **DAY))["totals"]["all"] == 1
    assert await consumer.parked() == []
    with pytest.raises(KeyError):
        await consumer.replay(parked[0].id)
    assert (await stats(client, owner, "poisoned", **DAY))["totals"]["all"] == 1


async def test_an_undecodable_event_is_parked_at_once_and_blocks_nothing(
    fast_retries: httpx.AsyncClient,
) -> None:
    client = fast_retries
    owner = await new_account(client, "owner@example.com")
    consumer = consumer_of(client, "analytics")
    good = [Envelope.wrap(e) for e in (created("abc", owner), click("abc"), click("abc"))]
    broken = Envelope.wrap(click("abc"))
    broken = Envelope(
        event_id=broken.event_id,
        type=broken.type,
        occurred_at=broken.occurred_at,
        key=broken.key,
        payload={**broken.payload, "is_bot": "not a boolean", "visitor_hash": None},
    )

    await consumer.deliver([good[0], good[1], broken, good[2]])

    parked = await consumer.parked()
    assert [(p.event_id, p.attempts) for p in parked] == [(broken.event_id, 1)]
    assert "payload does not match" in parked[0].error
    assert (await stats(client, owner, "abc", **DAY))["totals"]["all"] == 2


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("user_agent", "\x00"),
        ("referer", "\x00"),
        ("city", "\x00"),
        ("bot_reason", "\x00"),
        ("user_agent", "\ud800"),
        ("city", "\ud800"),
    ],
)
async def test_a_click_that_text_cannot_hold_is_parked_and_the_rest_of_its_batch_counts(
    fast_retries: httpx.AsyncClient, field: str, bad: str
) -> None:
    """PostgreSQL text (and so jsonb) cannot hold a NUL, nor UTF-8 a lone surrogate: the
    batch fails as a whole, and the click that holds one is found and parked, never stored
    in part."""
    client = fast_retries
    owner = await new_account(client, "owner@example.com")
    consumer = consumer_of(client, "analytics")
    poisoned = click("abc", MONDAY, "ana").model_copy(update={field: f"Lis{bad}bon"})
    await feed(client, created("abc", owner))

    await feed(client, click("abc", MONDAY, "v1"), poisoned, click("abc", MONDAY, "v2"))

    parked = await consumer.parked()
    assert [(p.event_id, p.attempts) for p in parked] == [(poisoned.event_id, 2)]
    body = await stats(client, owner, "abc", **DAY)
    assert (body["totals"]["all"], body["unique_clicks"]) == (2, 2)
