from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx

from tests.conftest import asyncpg_dsn
from tests.modules.auth.test_login import set_active
from tests.support.accounts import bearer, login, refresh, register
from tests.support.problems import assert_problem


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    await register(client)
    first = await login(client)

    response = await refresh(client, first["refresh_token"])

    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = await client.get("/api/auth/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200
    # and the new refresh token rotates in turn
    assert (await refresh(client, second["refresh_token"])).status_code == 200


async def test_reusing_a_rotated_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    old = (await login(client))["refresh_token"]
    new = (await refresh(client, old)).json()["refresh_token"]

    reuse = await refresh(client, old)

    body = assert_problem(reuse, 401)
    assert "already used" in body["detail"]
    assert_problem(await refresh(client, new), 401)


async def test_reuse_does_not_touch_other_sessions(client: httpx.AsyncClient) -> None:
    await register(client)
    stolen = (await login(client))["refresh_token"]
    other_session = (await login(client))["refresh_token"]
    await refresh(client, stolen)

    assert_problem(await refresh(client, stolen), 401)

    assert (await refresh(client, other_session)).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_at_most_one_succeed(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    token = (await login(client))["refresh_token"]

    responses = await asyncio.gather(*(refresh(client, token) for _ in range(5)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401, 401]


async def test_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "not-a-token-we-issued"), 401)


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await register(client)
    token = (await login(client))["refresh_token"]
    await shift_expiry(database_urls, timedelta(days=-31))

    body = assert_problem(await refresh(client, token), 401)
    assert "expired" in body["detail"]


async def test_an_inactive_user_cannot_refresh(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await register(client)
    token = (await login(client))["refresh_token"]
    await set_active(database_urls, False)

    assert_problem(await refresh(client, token), 401)


async def test_refresh_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await register(client)
    token = (await login(client))["refresh_token"]

    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        rows = await conn.fetch("SELECT * FROM refresh_tokens")
    finally:
        await conn.close()
    [row] = rows
    assert token.encode() not in b"".join(str(value).encode() for value in row.values())
    assert len(row["token_hash"]) == 32
    assert timedelta(days=29) < row["expires_at"] - row["created_at"] <= timedelta(days=30)


async def test_logout_revokes_the_session(client: httpx.AsyncClient) -> None:
    await register(client)
    token = (await login(client))["refresh_token"]

    response = await client.post("/api/auth/logout", json={"refresh_token": token})

    assert response.status_code == 204
    assert response.content == b""
    body = assert_problem(await refresh(client, token), 401)
    assert "revoked" in body["detail"]


async def test_logout_of_an_unknown_token_is_quietly_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/logout", json={"refresh_token": "unknown"})

    assert response.status_code == 204


async def shift_expiry(database_urls: dict[str, str], delta: timedelta) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        await conn.execute("UPDATE refresh_tokens SET expires_at = expires_at + $1", delta)
    finally:
        await conn.close()
