"""The statistics page's quick ranges and its chart's second series (unique clicks)."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.web.test_pages import HTML, ORIGIN, sign_up

pytestmark = pytest.mark.integration

VISITOR = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"}
OTHER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}


async def clicked_link(client: httpx.AsyncClient) -> str:
    """A link of a new account, clicked twice by one browser and once by another (from the
    same address), once the clicks have reached analytics."""
    await sign_up(client)
    made = await client.post("/links", data={"url": "https://example.com/counted"}, headers=ORIGIN)
    code = made.headers["location"].rsplit("=", 1)[1]
    for agent in (VISITOR, VISITOR, OTHER):
        visit = await client.get(f"/{code}", headers=agent)
        assert visit.is_redirect
    for _ in range(100):  # the clicks reach analytics through the bus
        stats = (await client.get(f"/api/stats/{code}")).json()
        if stats.get("totals", {}).get("all") == 3:
            return code
        await asyncio.sleep(0.05)
    raise AssertionError(stats)  # pragma: no cover


def quick_links(page: str) -> dict[str, str]:
    return {
        label: html.unescape(href)
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>(Last \d+ days)</a>', page)
    }


def picker(page: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}" type="date" value="([^"]*)"', page)
    assert found, page
    return found.group(1)


async def test_quick_ranges_ask_for_the_last_days_today_included(
    client: httpx.AsyncClient,
) -> None:
    code = await clicked_link(client)
    page = (await client.get(f"/stats/{code}?interval=week&include_bots=true", headers=HTML)).text
    links = quick_links(page)
    assert list(links) == ["Last 7 days", "Last 30 days", "Last 90 days"]
    today = datetime.now(UTC).date()
    for days in (7, 30, 90):
        href = links[f"Last {days} days"]
        assert href.startswith(f"/stats/{code}?")
        followed = await client.get(href, headers=HTML)
        assert followed.status_code == 200
        first = (today - timedelta(days=days - 1)).isoformat()
        assert picker(followed.text, "from") == first
        assert picker(followed.text, "to") == today.isoformat()
        # The interval and bots choice are kept; the chosen range is marked.
        assert ">Clicks per week</h2>" in followed.text
        assert re.search(r'id="include_bots"[^>]*checked', followed.text)
        assert f'aria-current="true">Last {days} days<' in followed.text
        # The API agrees: the same range counts today's clicks.
        api = (await client.get(f"/api/stats/{code}?from={first}")).json()
        assert api["totals"]["all"] == 3


async def test_hourly_buckets_become_daily_past_the_hourly_limit(
    client: httpx.AsyncClient,
) -> None:
    code = await clicked_link(client)
    page = (await client.get(f"/stats/{code}?interval=hour", headers=HTML)).text
    links = quick_links(page)
    assert "interval=hour" in links["Last 7 days"]
    assert "interval=day" in links["Last 90 days"]
    assert (await client.get(links["Last 90 days"], headers=HTML)).status_code == 200


async def test_the_chart_has_unique_clicks_as_a_second_series(client: httpx.AsyncClient) -> None:
    code = await clicked_link(client)
    page = (await client.get(f"/stats/{code}", headers=HTML)).text
    found = re.search(r'data-series="([^"]+)"', page)
    assert found
    series = json.loads(html.unescape(found.group(1)))
    api = (await client.get(f"/api/stats/{code}")).json()
    assert series["clicks"] == [bucket["clicks"] for bucket in api["series"]]
    assert series["unique"] == [bucket["unique_clicks"] for bucket in api["series"]]
    assert sum(series["clicks"]) == 3 and sum(series["unique"]) == 2
    assert 'role="img" aria-labelledby="chart-title"' in page
    assert ">Clicks per day</h2>" in page and "Unique clicks</li>" in page
