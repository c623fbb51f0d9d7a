"""Refresh-token rows are purged once nothing needs them: a rotated token when it expires
(until then it is how reuse is detected), an ended session an hour after it ended.

The purge runs when the module starts (awaited, so a fresh app has purged) and then every
`refresh_token_purge_seconds`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.modules.auth.purge import PeriodicPurge
from app.modules.auth.settings import AuthSettings
from tests.conftest import FAST_ARGON2, AppFactory, asyncpg_dsn
from tests.support.accounts import login, refresh, register
from tests.support.problems import assert_problem


async def sql(database_urls: dict[str, str], statement: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def rows(database_urls: dict[str, str]) -> int:
    count: int = await sql(database_urls, "SELECT count(*) FROM refresh_tokens")
    return count


async def refreshed(client: httpx.AsyncClient, token: str, times: int) -> list[str]:
    tokens = [token]
    for _ in range(times):
        response = await refresh(client, tokens[-1])
        assert response.status_code == 200, response.text
        tokens.append(response.json()["refresh_token"])
    return tokens


async def test_a_session_refreshed_100_times_keeps_one_row_once_the_rotated_ones_expire(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        await register(client)
        tokens = await refreshed(client, (await login(client))["refresh_token"], 100)
    assert await rows(database_urls) == 101

    async with app_client():  # a start purges: nothing has expired, nothing goes
        pass
    assert await rows(database_urls) == 101

    # The rotated tokens reach their expiry (the live one is younger than all of them).
    await sql(
        database_urls,
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
        "WHERE replaced_by IS NOT NULL",
    )
    async with app_client() as client:
        assert await rows(database_urls) == 1
        assert (await refresh(client, tokens[-1])).status_code == 200  # the session goes on


async def test_until_it_expires_a_rotated_token_still_reveals_reuse(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        await register(client)
        tokens = await refreshed(client, (await login(client))["refresh_token"], 3)
    await sql(database_urls, "UPDATE refresh_tokens SET created_at = now() - interval '29 days'")

    async with app_client() as client:  # purged at start
        reuse = await refresh(client, tokens[0])
        after = await refresh(client, tokens[-1])

    assert "already used" in assert_problem(reuse, 401)["detail"]
    assert_problem(after, 401)  # the whole session was revoked


async def test_an_ended_session_is_purged_an_hour_after_it_ended(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        await register(client)
        ended = await refreshed(client, (await login(client))["refresh_token"], 2)
        live = (await login(client))["refresh_token"]
        assert (
            await client.post("/api/auth/logout", json={"refresh_token": ended[-1]})
        ).status_code == 204
    assert await rows(database_urls) == 4

    async with app_client() as client:  # within the hour: kept, and told "revoked"
        assert "revoked" in assert_problem(await refresh(client, ended[-1]), 401)["detail"]
    assert await rows(database_urls) == 4

    await sql(
        database_urls,
        "UPDATE refresh_tokens SET revoked_at = revoked_at - $1::interval "
        "WHERE revoked_at IS NOT NULL",
        timedelta(hours=1, seconds=1),
    )
    async with app_client() as client:
        assert await rows(database_urls) == 1  # the live session's row only
        assert (await refresh(client, live)).status_code == 200
        assert_problem(await refresh(client, ended[-1]), 401)


async def test_a_session_revoked_for_reuse_is_purged_too(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        await register(client)
        tokens = await refreshed(client, (await login(client))["refresh_token"], 1)
        assert_problem(await refresh(client, tokens[0]), 401)  # reuse: all revoked
    await sql(
        database_urls,
        "UPDATE refresh_tokens SET revoked_at = now() - interval '2 hours'",
    )

    async with app_client():
        pass

    assert await rows(database_urls) == 0


async def test_the_purge_runs_again_every_period(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    often = AuthSettings(argon2=FAST_ARGON2, refresh_token_purge_seconds=1)
    async with app_client(auth=often) as client:
        await register(client)
        await login(client)
        await sql(database_urls, "UPDATE refresh_tokens SET expires_at = now()")

        async with asyncio.timeout(30):  # a guard only: the event is the row going
            while await rows(database_urls):
                await asyncio.sleep(0.1)


async def test_a_failed_purge_is_logged_and_does_not_stop_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> int:
        raise ConnectionRefusedError("the database is down\nand more detail")

    purge = PeriodicPurge(broken, interval_seconds=3600)
    await purge.start()
    await purge.stop()

    [record] = [r for r in caplog.records if "purge failed" in r.getMessage()]
    assert record.getMessage().endswith("ConnectionRefusedError: the database is down")
