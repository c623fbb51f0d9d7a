"""The time series: UTC buckets of an hour, a day or a week, empty ones included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx

from tests.modules.analytics.helpers import MONDAY, click, created, feed, stats
from tests.support.accounts import Account


def series(body: dict[str, object]) -> list[tuple[str, int]]:
    buckets = body["series"]
    assert isinstance(buckets, list)
    return [(bucket["start"], bucket["clicks"]) for bucket in buckets]


async def test_hourly_buckets_cover_the_range_hour_by_hour(
    client: httpx.AsyncClient, owner: Account
) -> None:
    ten = MONDAY + timedelta(hours=10)
    await feed(
        client,
        created("abc", owner),
        click("abc", ten + timedelta(minutes=5), "ana"),
        click("abc", ten + timedelta(minutes=55), "bo"),
        click("abc", ten + timedelta(hours=2), "ana"),
        click("abc", ten + timedelta(hours=4), "ana"),  # outside: `to` is exclusive
    )

    body = await stats(
        client,
        owner,
        "abc",
        interval="hour",
        from_=ten + timedelta(minutes=30),
        to=ten + timedelta(hours=4),
    )

    # The range is taken in whole hours: 10:30 starts in the 10:00 bucket.
    assert series(body) == [
        ("2026-03-02T10:00:00Z", 2),
        ("2026-03-02T11:00:00Z", 0),
        ("2026-03-02T12:00:00Z", 1),
        ("2026-03-02T13:00:00Z", 0),
    ]
    assert body["totals"]["all"] == 3
    assert body["interval"] == "hour"


async def test_daily_buckets_start_at_utc_midnight_and_empty_days_read_zero(
    client: httpx.AsyncClient, owner: Account
) -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    await feed(
        client,
        created("abc", owner),
        # 00:30 in UTC+1 is still Sunday in UTC: before the range.
        click("abc", datetime(2026, 3, 2, 0, 30, tzinfo=lisbon_summer), "ana"),
        click("abc", MONDAY + timedelta(hours=23, minutes=59), "ana"),
        click("abc", MONDAY + timedelta(days=3, hours=1), "bo"),
    )

    body = await stats(
        client, owner, "abc", from_="2026-03-02T01:00:00+01:00", to="2026-03-06T00:00:00Z"
    )

    assert body["from"] == "2026-03-02T00:00:00Z"  # given with an offset, answered in UTC
    assert series(body) == [
        ("2026-03-02T00:00:00Z", 1),
        ("2026-03-03T00:00:00Z", 0),
        ("2026-03-04T00:00:00Z", 0),
        ("2026-03-05T00:00:00Z", 1),
    ]


async def test_weekly_buckets_start_on_monday(client: httpx.AsyncClient, owner: Account) -> None:
    sunday = MONDAY + timedelta(days=6, hours=23)
    await feed(
        client,
        created("abc", owner),
        click("abc", MONDAY + timedelta(days=2, hours=12), "ana"),  # Wednesday, week 1
        click("abc", sunday, "bo"),  # the last hour of week 1
        click("abc", MONDAY + timedelta(days=7), "ana"),  # Monday, week 2
        click("abc", MONDAY + timedelta(days=22), "cy"),  # Tuesday, week 4
    )

    body = await stats(
        client,
        owner,
        "abc",
        interval="week",
        from_=MONDAY + timedelta(days=2),
        to=MONDAY + timedelta(days=23),
    )

    assert series(body) == [
        ("2026-03-02T00:00:00Z", 2),  # the Monday of `from`'s week
        ("2026-03-09T00:00:00Z", 1),
        ("2026-03-16T00:00:00Z", 0),
        ("2026-03-23T00:00:00Z", 1),
    ]
    assert [bucket["unique_clicks"] for bucket in body["series"]] == [2, 1, 0, 1]
    assert body["unique_clicks"] == 4


async def test_without_from_and_to_the_last_30_days_are_shown(
    client: httpx.AsyncClient, owner: Account
) -> None:
    now = datetime.now(UTC)
    await feed(
        client,
        created("abc", owner),
        click("abc", now - timedelta(days=40), "ana"),
        click("abc", now - timedelta(days=10), "ana"),
        click("abc", now - timedelta(minutes=1), "bo"),
    )

    body = await stats(client, owner, "abc")

    assert body["totals"]["all"] == 2
    to = datetime.fromisoformat(body["to"])
    assert abs(to - now) < timedelta(minutes=1)
    assert to - datetime.fromisoformat(body["from"]) == timedelta(days=30)
    assert body["interval"] == "day"
    assert len(body["series"]) == 31  # the partial first and last days included
