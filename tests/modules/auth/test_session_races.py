"""A password change or a disabling ends every session, even one being made or renewed at
that very moment: the login or refresh in flight is parked at a chosen point while the
change runs (red-team findings F1 and F2 of stop 21)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from app.modules.auth.passwords import Passwords
from app.modules.auth.service import AuthService
from tests.conftest import asyncpg_dsn
from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem
from tests.support.waiting import eventually

NEW = "another long and unusual passphrase"


class Parked:
    """Stops the first call of a patched coroutine after it ran, until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True

    def around(self, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def parked(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            if self.armed:
                self.armed = False
                self.reached.set()
                await self.release.wait()
            return result

        return parked


async def waiting_on_a_lock(database_urls: dict[str, str], task: asyncio.Task[Any]) -> None:
    """Until a transaction of auth's database waits on a row lock (or the task ended)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:

        async def waiters() -> int:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return count

        await eventually(waiters, lambda n: n > 0 or task.done(), "the change waiting on a lock")
    finally:
        await conn.close()


async def test_a_login_whose_hash_ran_before_a_password_change_gets_no_session(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(client)
    mine = await login(client)
    parked = Parked()
    monkeypatch.setattr(Passwords, "verify", parked.around(Passwords.verify))
    thief = asyncio.create_task(
        client.post("/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD})
    )
    await parked.reached.wait()  # the old password checked, no token issued yet

    changed = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=bearer(mine["access_token"]),
    )
    parked.release.set()

    assert changed.status_code == 200, changed.text
    assert_problem(await thief, 401)


async def test_a_login_whose_hash_ran_before_a_disabling_gets_no_session(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(client, "admin@example.com")
    admin = bearer((await login(client, "admin@example.com"))["access_token"])
    user = await register(client)
    parked = Parked()
    monkeypatch.setattr(Passwords, "verify", parked.around(Passwords.verify))
    thief = asyncio.create_task(
        client.post("/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD})
    )
    await parked.reached.wait()

    disabled = await client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=admin
    )
    parked.release.set()

    assert disabled.status_code == 200, disabled.text
    assert_problem(await thief, 403)


async def test_a_refresh_in_flight_during_a_password_change_is_ended_with_the_rest(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, database_urls: dict[str, str]
) -> None:
    await register(client)
    stolen = await login(client)
    mine = await login(client)
    parked = Parked()
    monkeypatch.setattr(AuthService, "_issue", parked.around(AuthService._issue))
    thief = asyncio.create_task(
        client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    )
    await parked.reached.wait()  # the successor token inserted, not committed

    change = asyncio.create_task(
        client.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW},
            headers=bearer(mine["access_token"]),
        )
    )
    await waiting_on_a_lock(database_urls, change)
    parked.release.set()
    renewed, changed = await thief, await change

    assert changed.status_code == 200, changed.text
    # The refresh went first (it held the account's row): the change then ended its token.
    assert renewed.status_code == 200, renewed.text
    again = await client.post(
        "/api/auth/refresh", json={"refresh_token": renewed.json()["refresh_token"]}
    )
    assert_problem(again, 401)
