"""Totals and uniques are exact, whatever the batches look like."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import httpx

from app.bus.envelope import Envelope
from app.contracts.shortener import LinkClicked
from tests.conftest import asyncpg_dsn, consumer_of
from tests.modules.analytics.helpers import GOOGLEBOT, MONDAY, click, created, feed, stats
from tests.support.accounts import Account

TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
WEEK = {"from_": MONDAY, "to": MONDAY + timedelta(days=7)}


def resend(event: LinkClicked) -> LinkClicked:
    return event.model_copy(update={"event_id": uuid.uuid4()})


async def test_every_click_counts_once_even_when_events_and_batches_repeat(
    client: httpx.AsyncClient, owner: Account
) -> None:
    clicks = [
        click("abc", MONDAY + timedelta(minutes=i), visitor=f"visitor-{i % 7}") for i in range(40)
    ]
    envelopes = [Envelope.wrap(event) for event in [created("abc", owner), *clicks]]
    consumer = consumer_of(client, "analytics")

    # The same click under a new event id (a producer that sent it twice) is one click too.
    resent = [Envelope.wrap(resend(clicks[0])), Envelope.wrap(resend(clicks[1]))]

    await consumer.deliver([*envelopes, envelopes[1], envelopes[2], resent[0]])
    await consumer.deliver(envelopes)  # the whole batch again: a redelivery
    await consumer.deliver([resent[1]])

    body = await stats(client, owner, "abc", **WEEK)
    assert body["totals"] == {"all": 40, "human": 40, "bot": 0}
    assert body["unique_clicks"] == 7
    assert sum(bucket["clicks"] for bucket in body["series"]) == 40


async def test_uniques_are_distinct_visitors_per_day_summed_over_the_range(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("abc", owner),
        # Monday: ana three times (twice in this batch), bo once.
        click("abc", MONDAY + timedelta(hours=9), "ana"),
        click("abc", MONDAY + timedelta(hours=9, minutes=5), "ana"),
        click("abc", MONDAY + timedelta(hours=15), "bo"),
        # Tuesday: ana again, a new day.
        click("abc", TUESDAY + timedelta(hours=8), "ana"),
    )
    # A later batch: ana once more on Monday is not new; cy on Tuesday is.
    await feed(
        client,
        click("abc", MONDAY + timedelta(hours=20), "ana"),
        click("abc", TUESDAY + timedelta(hours=22), "cy"),
    )

    days = await stats(client, owner, "abc", **WEEK)
    hours = await stats(client, owner, "abc", interval="hour", **WEEK)
    only_tuesday = await stats(client, owner, "abc", from_=TUESDAY, to=WEDNESDAY)

    assert days["totals"]["all"] == 6
    assert days["unique_clicks"] == 4  # Monday 2 (ana, bo) + Tuesday 2 (ana, cy)
    assert [b["unique_clicks"] for b in days["series"]] == [2, 2, 0, 0, 0, 0, 0]
    assert [b["clicks"] for b in days["series"]] == [4, 2, 0, 0, 0, 0, 0]
    # Hours hold each visitor in the hour it was first seen, so they add up to the days.
    unique_hours = {b["start"]: b["unique_clicks"] for b in hours["series"] if b["unique_clicks"]}
    assert unique_hours == {
        "2026-03-02T09:00:00Z": 1,
        "2026-03-02T15:00:00Z": 1,
        "2026-03-03T08:00:00Z": 1,
        "2026-03-03T22:00:00Z": 1,
    }
    assert only_tuesday["unique_clicks"] == 2
    assert only_tuesday["totals"]["all"] == 2


async def test_bots_are_counted_apart_and_left_out_unless_asked_for(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("abc", owner),
        click("abc", MONDAY, "ana"),
        click("abc", MONDAY + timedelta(hours=1), "bo"),
        click("abc", MONDAY, "crawler", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", MONDAY + timedelta(hours=2), "crawler", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", TUESDAY, "crawler", user_agent=GOOGLEBOT, is_bot=True),
    )

    humans = await stats(client, owner, "abc", **WEEK)
    everyone = await stats(client, owner, "abc", include_bots=True, **WEEK)

    assert humans["totals"] == everyone["totals"] == {"all": 5, "human": 2, "bot": 3}
    assert humans["include_bots"] is False and everyone["include_bots"] is True
    assert humans["unique_clicks"] == 2
    assert everyone["unique_clicks"] == 4  # the crawler is one visitor a day, two days
    assert [b["clicks"] for b in humans["series"][:2]] == [2, 0]
    assert [b["clicks"] for b in everyone["series"][:2]] == [4, 1]


async def test_clicks_that_arrive_before_their_link_created_still_count(
    client: httpx.AsyncClient, owner: Account
) -> None:
    # Over Kafka link_clicked and link_created are different topics: either may come first.
    await feed(client, click("early", MONDAY, "ana"), click("early", MONDAY, "bo"))
    await feed(client, created("early", owner))
    await feed(client, click("early", MONDAY, "ana"))

    body = await stats(client, owner, "early", **WEEK)

    assert body["totals"]["all"] == 3
    assert body["unique_clicks"] == 2


async def test_clicks_are_their_own_inbox(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    """A click's id keys the clicks table, which refuses it twice: the inbox records the
    link's creation, and no click (one row and index entry less per click)."""
    consumer = consumer_of(client, "analytics")
    link = created("abc", owner)
    clicks = [click("abc", MONDAY + timedelta(minutes=i)) for i in range(3)]
    await consumer.deliver([Envelope.wrap(event) for event in [link, *clicks]])
    await consumer.deliver([Envelope.wrap(clicks[0])])

    conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
    try:
        recorded = await conn.fetch("SELECT event_id FROM processed_events")
        stored = await conn.fetchval("SELECT count(*) FROM clicks")
    finally:
        await conn.close()
    assert [row["event_id"] for row in recorded] == [link.event_id]
    assert stored == 3
    assert (await stats(client, owner, "abc", **WEEK))["totals"]["all"] == 3
