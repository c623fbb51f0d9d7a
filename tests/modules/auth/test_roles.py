"""Roles: the first account of an instance is its admin, every later one a user."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx

from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, register


async def test_the_first_account_is_the_admin_and_the_next_are_users(
    client: httpx.AsyncClient,
) -> None:
    first = await register(client, "first@example.com")
    second = await register(client, "second@example.com")

    assert (first["role"], second["role"]) == ("admin", "user")
    tokens = await login(client, "second@example.com")
    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["role"] == "user"


async def test_first_accounts_made_at_once_make_exactly_one_admin(
    app_client: AppFactory,
) -> None:
    async with AsyncExitStack() as stack:
        # Different clients: one client gets one password hash at a time.
        clients = [
            await stack.enter_async_context(app_client(client_ip=f"203.0.113.{n}"))
            for n in range(1, 5)
        ]
        users = await asyncio.gather(
            *(register(c, f"racer{n}@example.com") for n, c in enumerate(clients))
        )

    assert sorted(user["role"] for user in users) == ["admin", "user", "user", "user"]
