"""POST /api/auth/password: the current password checked as at login, the new one as at
registration; every other session ends, and the answer is a new token pair."""

from __future__ import annotations

from typing import Any

import httpx

from app.config import Settings
from tests.conftest import AppFactory
from tests.support.accounts import PASSWORD, bearer, login, refresh, register
from tests.support.problems import assert_problem

NEW_PASSWORD = "another quite unusual passphrase"


async def change(
    client: httpx.AsyncClient, access: str, current: str = PASSWORD, **body: Any
) -> httpx.Response:
    return await client.post(
        "/api/auth/password",
        json={"current_password": current, "new_password": NEW_PASSWORD, **body},
        headers=bearer(access),
    )


async def test_the_session_named_goes_on_and_every_other_ends(client: httpx.AsyncClient) -> None:
    await register(client)
    mine = await login(client)
    other = await login(client)

    changed = await change(client, mine["access_token"], refresh_token=mine["refresh_token"])

    assert changed.status_code == 200, changed.text
    assert changed.headers["cache-control"] == "no-store"
    pair = changed.json()
    assert_problem(await refresh(client, other["refresh_token"]), 401)
    assert (await refresh(client, pair["refresh_token"])).status_code == 200
    me = await client.get("/api/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    old = await client.post(
        "/api/auth/login", json={"email": me.json()["email"], "password": PASSWORD}
    )
    assert_problem(old, 401)
    assert (await login(client, password=NEW_PASSWORD))["access_token"]


async def test_without_a_refresh_token_every_session_ends_and_a_new_one_begins(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    first = await login(client)
    second = await login(client)

    changed = await change(client, first["access_token"])

    assert changed.status_code == 200, changed.text
    for ended in (first, second):
        assert_problem(await refresh(client, ended["refresh_token"]), 401)
    assert (await refresh(client, changed.json()["refresh_token"])).status_code == 200


async def test_a_wrong_current_password_is_403_naming_it_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    session = await login(client)

    wrong = await change(client, session["access_token"], current="not my password at all")

    assert_problem(wrong, 403, fields=["current_password"])
    assert (await refresh(client, session["refresh_token"])).status_code == 200
    assert (await login(client))["access_token"]


async def test_bad_input_is_a_4xx_naming_the_field(client: httpx.AsyncClient) -> None:
    await register(client)
    session = await login(client)
    await register(client, "bob@example.com")
    bobs = await login(client, "bob@example.com")
    access = session["access_token"]

    for body, named in (
        ({"new_password": "password123"}, "new_password"),
        ({"new_password": "short"}, "new_password"),
        ({"new_password": PASSWORD}, "new_password"),  # the current one
        ({"new_password": None}, "new_password"),
        ({"refresh_token": bobs["refresh_token"]}, "refresh_token"),  # not yours
        ({"refresh_token": "made-up"}, "refresh_token"),
        ({"refresh_token": ""}, "refresh_token"),
    ):
        assert_problem(await change(client, access, **body), 422, fields=[named])
    missing = await client.post(
        "/api/auth/password", json={"new_password": NEW_PASSWORD}, headers=bearer(access)
    )
    assert_problem(missing, 422, fields=["current_password"])
    assert_problem(
        await client.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        ),
        401,
    )
    # None of these changed anything: both sessions live, the old password good.
    assert (await refresh(client, session["refresh_token"])).status_code == 200
    assert (await refresh(client, bobs["refresh_token"])).status_code == 200
    assert (await login(client))["access_token"]


async def test_guesses_of_the_current_password_share_the_login_throttle(
    app_client: AppFactory, settings: Settings
) -> None:
    throttle = settings.auth.throttle.model_copy(update={"max_failures_per_email": 2})
    auth = settings.auth.model_copy(update={"throttle": throttle})
    async with app_client(auth=auth) as client:
        await register(client)
        access = (await login(client))["access_token"]
        for _ in range(2):
            assert_problem(await change(client, access, current="a wrong guess!"), 403)
        throttled = await change(client, access)
        assert_problem(throttled, 429)
        assert int(throttled.headers["retry-after"]) > 0
        login_too = await client.post(
            "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
        )
        assert_problem(login_too, 429)


async def test_a_disabled_accounts_token_cannot_change_the_password(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "admin@example.com")
    as_admin = bearer((await login(client, "admin@example.com"))["access_token"])
    user = await register(client)
    access = (await login(client))["access_token"]
    await client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=as_admin
    )

    assert_problem(await change(client, access), 401)
