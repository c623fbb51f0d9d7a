"""A code that no link can have is a 404 before the database is asked: PostgreSQL text
cannot hold a NUL, and a query with one was a 500 that logged its parameters."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.modules.analytics.service import StatsService
from tests.modules.analytics.helpers import created, feed, get_stats
from tests.support.accounts import Account, new_account
from tests.support.problems import assert_problem

IMPOSSIBLE = ["%00", "ab%00cd", "x" * 65, "a.b", "a%20b", "%C3%A4bc", "%E2%80%8B"]


@pytest.mark.parametrize("code", IMPOSSIBLE)
async def test_a_code_that_cannot_exist_is_a_404_without_a_query(
    client: httpx.AsyncClient,
    owner: Account,
    code: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unknown = assert_problem(await get_stats(client, owner, "nope"), 404)

    async def no_query(*args: object, **kwargs: object) -> None:
        raise AssertionError("the database was asked about an impossible code")

    monkeypatch.setattr(StatsService, "link_stats", no_query)
    with caplog.at_level(logging.WARNING):
        response = await client.get(f"/api/stats/{code}", headers=owner.headers)

    assert assert_problem(response, 404) == unknown
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_an_impossible_code_still_needs_a_token_and_possible_codes_still_answer(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(client, created("a", owner), created("Z_-9" * 16, owner))

    assert_problem(await client.get("/api/stats/%00"), 401)
    assert (await get_stats(client, owner, "a")).status_code == 200
    assert (await get_stats(client, owner, "Z_-9" * 16)).status_code == 200
    other = await new_account(client, "other@example.com")
    assert_problem(await get_stats(client, other, "a"), 404)
