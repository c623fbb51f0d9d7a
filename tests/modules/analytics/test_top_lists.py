"""The top lists: referers by host, countries, cities, browsers, OS and devices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from app.config import Settings
from tests.conftest import AppFactory
from tests.modules.analytics.helpers import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    GOOGLEBOT,
    MONDAY,
    SAFARI_IPAD,
    SAFARI_IPHONE,
    click,
    created,
    feed,
    stats,
    top,
)
from tests.support.accounts import Account, new_account

DAY = {"from_": MONDAY, "to": MONDAY + timedelta(days=1)}


def visit(visitor: str, **fields: Any) -> Any:
    return click("abc", MONDAY + timedelta(hours=12), visitor, **fields)


async def test_top_lists_count_each_dimension_most_clicks_first(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("abc", owner),
        visit(
            "a",
            referer="https://www.Google.com/search?q=encurta",
            country="PT",
            city="Lisbon",
            user_agent=CHROME_WINDOWS,
        ),
        visit(
            "b",
            referer="https://www.google.com/",
            country="PT",
            city="Porto",
            user_agent=CHROME_WINDOWS,
        ),
        visit(
            "c",
            referer="https://news.ycombinator.com/item?id=1",
            country="PT",
            city="Lisbon",
            user_agent=SAFARI_IPHONE,
        ),
        visit("d", referer=None, country="BR", city="Lisbon", user_agent=FIREFOX_LINUX),
        visit("e", referer="", country=None, city=None, user_agent=SAFARI_IPAD),
        visit("f", referer="not a url", country="BR", user_agent=None),
    )

    body = await stats(client, owner, "abc", **DAY)

    assert body["top"]["referers"] == [
        {"value": "direct", "clicks": 2},
        {"value": "www.google.com", "clicks": 2},
        {"value": "news.ycombinator.com", "clicks": 1},
        {"value": "unknown", "clicks": 1},
    ]  # ties by value
    assert top(body, "countries") == {"PT": 3, "BR": 2, "unknown": 1}
    assert list(top(body, "countries")) == ["PT", "BR", "unknown"]
    assert top(body, "cities") == {"Lisbon": 3, "Porto": 1, "unknown": 2}
    assert top(body, "browsers") == {"Chrome": 2, "Mobile Safari": 2, "Firefox": 1, "unknown": 1}
    assert top(body, "os") == {"Windows": 2, "iOS": 2, "Linux": 1, "unknown": 1}
    assert top(body, "devices") == {"desktop": 3, "mobile": 1, "tablet": 1, "other": 1}


async def test_bots_enter_the_top_lists_only_with_include_bots(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("abc", owner),
        visit("a", user_agent=CHROME_WINDOWS, country="PT"),
        visit("bot", user_agent=GOOGLEBOT, country="US", is_bot=True),
        visit("bot", user_agent=GOOGLEBOT, country="US", is_bot=True),
    )

    humans = await stats(client, owner, "abc", **DAY)
    everyone = await stats(client, owner, "abc", include_bots=True, **DAY)

    assert top(humans, "devices") == {"desktop": 1}
    assert top(humans, "countries") == {"PT": 1}
    assert top(everyone, "devices") == {"bot": 2, "desktop": 1}
    assert top(everyone, "countries") == {"US": 2, "PT": 1}
    assert top(everyone, "browsers") == {"Googlebot": 2, "Chrome": 1}


async def test_top_lists_count_whole_days_of_the_range(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("abc", owner),
        click("abc", MONDAY + timedelta(hours=5), "early", country="JP"),
        click("abc", MONDAY + timedelta(hours=15), "late", country="PT"),
        click("abc", MONDAY + timedelta(days=1, hours=1), "next-day", country="FR"),
    )

    body = await stats(
        client, owner, "abc", from_=MONDAY + timedelta(hours=12), to=MONDAY + timedelta(days=1)
    )

    assert body["totals"]["all"] == 1  # hours: only 15:00 is inside
    assert top(body, "countries") == {"JP": 1, "PT": 1}  # days: all of Monday


async def test_top_lists_hold_the_configured_number_of_entries(
    app_client: AppFactory, settings: Settings
) -> None:
    async with app_client(analytics=settings.analytics.model_copy(update={"top_n": 2})) as client:
        owner = await new_account(client, "owner@example.com")
        countries = ["PT"] * 3 + ["BR"] * 2 + ["FR"]
        await feed(
            client,
            created("abc", owner),
            *(visit(f"v{i}", country=country) for i, country in enumerate(countries)),
        )

        body = await stats(client, owner, "abc", **DAY)

    assert body["top"]["countries"] == [
        {"value": "PT", "clicks": 3},
        {"value": "BR", "clicks": 2},
    ]
