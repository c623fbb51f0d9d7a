"""Only the owner reads a link's stats; bad query parameters are named in a 422."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.modules.analytics.helpers import MONDAY, click, created, feed, get_stats, stats
from tests.support.accounts import Account, new_account
from tests.support.problems import assert_problem

WEEK = {"from_": MONDAY, "to": MONDAY + timedelta(days=7)}


async def test_the_owner_reads_the_stats_and_nobody_else_learns_the_code_exists(
    client: httpx.AsyncClient, owner: Account
) -> None:
    other = await new_account(client, "other@example.com")
    await feed(client, created("mine", owner), created("anon", None), click("mine", MONDAY))

    assert (await stats(client, owner, "mine", **WEEK))["totals"]["all"] == 1
    others_view = assert_problem(await get_stats(client, other, "mine", **WEEK), 404)
    unknown = assert_problem(await get_stats(client, owner, "nope", **WEEK), 404)
    anonymous_link = assert_problem(await get_stats(client, owner, "anon", **WEEK), 404)
    assert others_view["detail"] == unknown["detail"] == anonymous_link["detail"]
    assert "mine" not in others_view["detail"]


async def test_stats_need_a_valid_access_token(client: httpx.AsyncClient, owner: Account) -> None:
    await feed(client, created("mine", owner))

    missing = await get_stats(client, None, "mine")
    forged = await client.get("/api/stats/mine", headers={"Authorization": "Bearer x.y.z"})

    assert_problem(missing, 401)
    assert_problem(forged, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30T00:00:00Z"}, "to"),
        ({"from": "1900-01-01T00:00:00Z"}, "from"),
        ({"interval": "month"}, "interval"),
        ({"include_bots": "maybe"}, "include_bots"),
        ({"from": "2026-03-05T00:00:00Z", "to": "2026-03-04T00:00:00Z"}, "from"),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "interval": "hour"},
            "interval",
        ),
        ({"from": "1980-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ],
)
async def test_a_bad_query_parameter_is_a_422_that_names_it(
    client: httpx.AsyncClient, owner: Account, params: dict[str, Any], field: str
) -> None:
    await feed(client, created("mine", owner))

    response = await client.get("/api/stats/mine", params=params, headers=owner.headers)

    problem = assert_problem(response, 422, fields=[field])
    assert field in problem["detail"]


async def test_a_bad_query_answers_the_same_for_any_code(
    client: httpx.AsyncClient, owner: Account
) -> None:
    other = await new_account(client, "other@example.com")
    await feed(client, created("mine", owner))

    on_theirs = await get_stats(client, other, "mine", interval="month")
    on_unknown = await get_stats(client, other, "nope", interval="month")

    assert assert_problem(on_theirs, 422) == assert_problem(on_unknown, 422)
