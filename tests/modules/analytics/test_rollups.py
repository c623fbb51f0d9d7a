"""What one batch of clicks adds to the rollups, read from the tables the handler's statement
fills. The handler runs under a session time zone far from UTC: the buckets must not move."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.contracts.shortener import LinkClicked
from app.modules.analytics.enrichment import clip
from app.modules.analytics.subscribers import on_link_clicked
from tests.conftest import truncate_all
from tests.modules.analytics.helpers import GOOGLEBOT, MONDAY, click

NINE = MONDAY + timedelta(hours=9)
NOON = MONDAY + timedelta(hours=12)
DAY = MONDAY.date()

HourRow = tuple[int, int, int, int, int]  # total, human, bot, unique_human, unique_bot


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    await truncate_all(database_urls)
    engine = create_async_engine(database_urls["analytics"], poolclass=pool.NullPool)
    yield engine
    await engine.dispose()


async def handle(engine: AsyncEngine, *events: LinkClicked) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL timezone = 'Pacific/Chatham'"))  # UTC+13:45
        await on_link_clicked(conn, events)


async def hours(engine: AsyncEngine) -> dict[datetime, HourRow]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT hour, total, human, bot, unique_human, unique_bot FROM url_stats")
        )
        return {
            row.hour.astimezone(UTC): (
                row.total,
                row.human,
                row.bot,
                row.unique_human,
                row.unique_bot,
            )
            for row in rows
        }


async def dimensions(engine: AsyncEngine) -> dict[tuple[date, str, str], tuple[int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT day, dimension, value, human, bot FROM url_dimension_stats")
        )
        return {(row.day, row.dimension, row.value): (row.human, row.bot) for row in rows}


async def test_a_new_visitor_is_unique_once_in_the_hour_of_its_earliest_click(
    engine: AsyncEngine,
) -> None:
    await handle(engine, click("abc", MONDAY + timedelta(hours=8), "bo"))

    await handle(
        engine,
        click("abc", NOON, "ana"),
        click("abc", NINE, "ana"),  # earlier, though later in the batch
        click("abc", NOON, "bo"),  # not new: seen in an earlier batch
    )

    assert {hour.hour: (row[0], row[3]) for hour, row in (await hours(engine)).items()} == {
        8: (1, 1),
        9: (1, 1),
        12: (2, 0),
    }


async def test_bots_are_counted_and_unique_apart_from_humans(engine: AsyncEngine) -> None:
    await handle(
        engine,
        click("abc", NINE, "bot", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", NINE, "bot", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", NINE, "ana"),
    )

    assert await hours(engine) == {NINE: (3, 1, 2, 1, 1)}


async def test_a_visitor_seen_as_human_then_as_bot_is_unique_as_its_earliest_click_was(
    engine: AsyncEngine,
) -> None:
    await handle(
        engine,
        click("abc", NOON, "ana", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", NINE, "ana"),
        click("abc", NINE + timedelta(days=1), "ana", user_agent=GOOGLEBOT, is_bot=True),
    )

    assert await hours(engine) == {
        NINE: (1, 1, 0, 1, 0),
        NOON: (1, 0, 1, 0, 0),
        NINE + timedelta(days=1): (1, 0, 1, 0, 1),  # another day: new again, as a bot
    }


async def test_of_clicks_at_one_time_the_lowest_click_id_decides_the_unique(
    engine: AsyncEngine,
) -> None:
    """Not the order of the batch, which a redelivery may change."""
    low, high = sorted(uuid.uuid4() for _ in range(2))
    await handle(
        engine,
        click("abc", NINE, "ana", click_id=high),
        click("abc", NINE, "ana", user_agent=GOOGLEBOT, is_bot=True, click_id=low),
    )

    assert await hours(engine) == {NINE: (2, 1, 1, 0, 1)}


async def test_dimension_rows_count_humans_and_bots_per_value_and_day(
    engine: AsyncEngine,
) -> None:
    await handle(
        engine,
        click("abc", NINE, "a", country="PT"),
        click("abc", NINE, "b", country="PT"),
        click("abc", NINE, "c", country="PT", user_agent=GOOGLEBOT, is_bot=True),
        click("abc", NINE + timedelta(days=1), "a", country="PT"),
    )

    rows = await dimensions(engine)

    assert rows[(DAY, "country", "PT")] == (2, 1)
    assert rows[(DAY + timedelta(days=1), "country", "PT")] == (1, 0)
    assert rows[(DAY, "device", "bot")] == (0, 1)
    assert {(dimension, value) for d, dimension, value in rows if d == DAY} == {
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


async def test_dimension_values_are_clipped_as_enrichment_clips_them(engine: AsyncEngine) -> None:
    cities = [
        " Lisbon ",
        "\u3000Porto\xa0\x85",
        "\u2028",
        "é" * 300,
        "😀" * 201,
        "ß" * 199 + " x",
        "\tFaro\x1c",
        None,
    ]

    await handle(engine, *(click("abc", NINE, f"v{i}", city=c) for i, c in enumerate(cities)))

    cut = {value for _, dimension, value in await dimensions(engine) if dimension == "city"}
    assert cut == {clip(city) for city in cities}


async def test_times_are_bucketed_in_utc_and_a_click_id_counts_once(engine: AsyncEngine) -> None:
    same = uuid.uuid4()
    late_evening_in_brazil = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3)))

    await handle(
        engine,
        click("abc", late_evening_in_brazil, click_id=same),
        click("abc", NOON, click_id=same),  # the same click redelivered: the first wins
    )

    assert await hours(engine) == {datetime(2026, 3, 2, 2, tzinfo=UTC): (1, 1, 0, 1, 0)}
    assert {day for day, _, _ in await dimensions(engine)} == {DAY}


async def test_a_time_without_an_offset_is_taken_as_utc(engine: AsyncEngine) -> None:
    naive = click("abc").model_copy(update={"occurred_at": datetime(2026, 3, 2, 23, 30)})

    await handle(engine, naive)

    assert await hours(engine) == {MONDAY + timedelta(hours=23): (1, 1, 0, 1, 0)}
    assert {day for day, _, _ in await dimensions(engine)} == {DAY}


async def test_user_agents_and_referers_beyond_ascii_find_what_they_say(
    engine: AsyncEngine,
) -> None:
    """They cross twice (in the batch, and once each with what they say) and must meet."""
    await handle(
        engine,
        click("abc", NINE, "a", user_agent="Navegador/1.0 (ção; 😀)", referer="https://é.pt/😀"),
    )

    values = {(dimension, value) for _, dimension, value in await dimensions(engine)}

    assert {("referer", "é.pt"), ("browser", "unknown"), ("device", "other")} <= values
