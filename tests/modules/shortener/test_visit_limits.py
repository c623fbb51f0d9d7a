"""max_visits: a link lets that many people through, over every replica, and no more."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import AppFactory
from tests.modules.shortener.helpers import CHROME, GOOGLEBOT, ShortenerDb
from tests.support.accounts import new_account, shorten
from tests.support.problems import assert_problem


async def visit(client: httpx.AsyncClient, code: str, agent: str = CHROME) -> int:
    return (await client.get(f"/{code}", headers={"User-Agent": agent})).status_code


async def test_three_visits_then_410_and_bots_and_head_requests_use_none(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, code="three", max_visits=3)
    assert link["max_visits"] == 3

    answers = [
        await visit(client, "three"),
        await visit(client, "three", GOOGLEBOT),
        (await client.head("/three", headers={"User-Agent": CHROME})).status_code,
        await visit(client, "three"),
        await visit(client, "three", GOOGLEBOT),
        await visit(client, "three"),
    ]
    assert answers == [302] * 6
    last = await client.get("/three", headers={"User-Agent": CHROME})
    assert_problem(last, 410)
    assert "visits" in last.json()["detail"]
    assert await visit(client, "three", GOOGLEBOT) == 410  # gone for everyone now
    # Every redirect was a click (bots included); the refused one was not.
    shown = await client.get("/api/links/three", headers=ana.headers)
    assert shown.json()["click_count"] == 5


async def test_concurrent_people_over_two_replicas_get_exactly_max_visits_redirects(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as one, app_client() as two:
        ana = await new_account(one)
        await shorten(one, ana, code="scarce", max_visits=3)
        # Both replicas have the link cached, limit and all, before the rush.
        assert await visit(one, "scarce", GOOGLEBOT) == 302
        assert await visit(two, "scarce", GOOGLEBOT) == 302

        answers = await asyncio.gather(
            *(visit(replica, "scarce") for replica in (one, two) for _ in range(10))
        )

    assert sorted(answers) == [302] * 3 + [410] * 17
    assert (
        await ShortenerDb(database_urls).value("SELECT visits FROM urls WHERE code = 'scarce'") == 3
    )


async def test_a_change_of_the_limit_takes_effect_and_null_lifts_it(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="limited", max_visits=1)
    assert await visit(client, "limited") == 302
    assert await visit(client, "limited") == 410

    raised = await client.patch("/api/links/limited", json={"max_visits": 2}, headers=ana.headers)
    assert raised.json()["max_visits"] == 2
    assert [await visit(client, "limited") for _ in range(2)] == [302, 410]

    await client.patch("/api/links/limited", json={"max_visits": None}, headers=ana.headers)
    assert [await visit(client, "limited") for _ in range(3)] == [302] * 3


async def test_a_limit_below_one_is_a_422_naming_max_visits(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    for value in (0, -1, "many", 2**31):
        response = await client.post(
            "/api/links",
            json={"url": "https://example.com/", "max_visits": value},
            headers=ana.headers,
        )
        assert_problem(response, 422, fields=["max_visits"])
