"""Unit tests of the rollup increments one batch of clicks produces."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from app.modules.analytics.rollups import (
    dimension_increments,
    distinct_clicks,
    enrich,
    hourly_increments,
)
from tests.modules.analytics.helpers import GOOGLEBOT, MONDAY, click

NINE = MONDAY + timedelta(hours=9)
NOON = MONDAY + timedelta(hours=12)


def test_a_new_visitor_is_unique_once_in_the_hour_of_its_earliest_click() -> None:
    clicks = [
        enrich(click("abc", NOON, "ana")),
        enrich(click("abc", NINE, "ana")),  # earlier, though later in the batch
        enrich(click("abc", NOON, "bo")),  # not new: seen in an earlier batch
    ]

    rows = hourly_increments(clicks, new_visitors={("abc", MONDAY.date(), "ana")})

    assert {hour.hour: (row.total, row.unique_human) for (_, hour), row in rows.items()} == {
        9: (1, 1),
        12: (2, 0),
    }


def test_bots_are_counted_and_unique_apart_from_humans() -> None:
    clicks = [
        enrich(click("abc", NINE, "bot", user_agent=GOOGLEBOT, is_bot=True)),
        enrich(click("abc", NINE, "bot", user_agent=GOOGLEBOT, is_bot=True)),
        enrich(click("abc", NINE, "ana")),
    ]
    visitors = {("abc", MONDAY.date(), "bot"), ("abc", MONDAY.date(), "ana")}

    [row] = hourly_increments(clicks, visitors).values()

    assert (row.total, row.human, row.bot, row.unique_human, row.unique_bot) == (3, 1, 2, 1, 1)


def test_dimension_increments_count_humans_and_bots_per_value_and_day() -> None:
    clicks = [
        enrich(click("abc", NINE, "a", country="PT")),
        enrich(click("abc", NINE, "b", country="PT")),
        enrich(click("abc", NINE, "c", country="PT", user_agent=GOOGLEBOT, is_bot=True)),
        enrich(click("abc", NINE + timedelta(days=1), "a", country="PT")),
    ]

    rows = dimension_increments(clicks)

    day = MONDAY.date()
    assert rows[("abc", day, "country", "PT")] == (2, 1)
    assert rows[("abc", day + timedelta(days=1), "country", "PT")] == (1, 0)
    assert rows[("abc", day, "device", "bot")] == (0, 1)
    assert {(dimension, value) for _, d, dimension, value in rows if d == day} == {
        ("referer", "direct"),
        ("country", "PT"),
        ("city", "unknown"),
        ("browser", "Chrome"),
        ("browser", "Googlebot"),
        ("os", "Windows"),
        ("os", "unknown"),
        ("device", "desktop"),
        ("device", "bot"),
    }


def test_times_are_bucketed_in_utc_and_a_click_id_counts_once() -> None:
    same = uuid.uuid4()
    late_evening_in_brazil = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3)))
    first = enrich(click("abc", late_evening_in_brazil, click_id=same))

    assert first.hour == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert first.visitor == ("abc", MONDAY.date(), "visitor-1")
    assert distinct_clicks([first, enrich(click("abc", NOON, click_id=same))]) == [first]
