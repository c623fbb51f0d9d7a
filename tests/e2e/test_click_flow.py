"""The whole product through its HTTP API: sign up, shorten, follow, read the numbers."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.deployment import Cluster
from tests.e2e.flows import stats, wait_for_total
from tests.support.accounts import new_account, shorten

pytestmark = pytest.mark.integration

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# (client IP, user agent, referer, how many times)
VISITS = [
    ("8.8.8.8", CHROME_WINDOWS, "https://news.ycombinator.com/item?id=1", 4),  # US
    ("81.2.69.142", FIREFOX_LINUX, "https://t.co/abc", 3),  # GB
    ("200.160.2.3", SAFARI_IPHONE, None, 2),  # BR, typed in
    ("66.249.66.1", GOOGLEBOT, None, 2),  # a crawler, from the US
]
TOTAL = sum(times for *_, times in VISITS)


def top(body: dict[str, object], dimension: str) -> dict[str, int]:
    entries = body["top"][dimension]  # type: ignore[index]
    return {entry["value"]: entry["clicks"] for entry in entries}  # type: ignore[index]


async def test_clicks_flow_from_redirect_to_exact_statistics(cluster: Cluster) -> None:
    async with cluster.client() as client:
        ana = await new_account(client)
        code = (await shorten(client, ana, "https://example.com/landing?utm=1"))["code"]

        async def follow(ip: str, agent: str, referer: str | None) -> None:
            headers = {"X-Forwarded-For": ip, "User-Agent": agent}
            if referer:
                headers["Referer"] = referer
            response = await client.get(f"/{code}", headers=headers)
            assert response.status_code == 302
            assert response.headers["location"] == "https://example.com/landing?utm=1"

        await asyncio.gather(
            *(
                follow(ip, agent, referer)
                for ip, agent, referer, times in VISITS
                for _ in range(times)
            )
        )

        body = await wait_for_total(client, ana, code, TOTAL)
        with_bots = await stats(client, ana, code, include_bots="true")
        link = (await client.get(f"/api/links/{code}", headers=ana.headers)).json()

    assert body["totals"] == {"all": TOTAL, "human": TOTAL - 2, "bot": 2}
    assert body["unique_clicks"] == 3
    assert with_bots["unique_clicks"] == 4
    assert link["click_count"] == body["totals"]["all"]
    assert top(body, "countries") == {"US": 4, "GB": 3, "BR": 2}
    assert top(body, "referers") == {"news.ycombinator.com": 4, "t.co": 3, "direct": 2}
    assert top(body, "browsers") == {"Chrome": 4, "Firefox": 3, "Mobile Safari": 2}
    assert top(with_bots, "browsers")["Googlebot"] == 2
    assert sum(point["clicks"] for point in body["series"]) == TOTAL - 2
