"""ENCURTA_AUTH__REGISTRATION: open (anyone), invite (an admin's single-use, expiring
invite, taken with the account in one transaction) and closed (admins make accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from tests.conftest import AppFactory, asyncpg_dsn
from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem


@pytest.fixture
def policy(app_client: AppFactory, settings: Settings) -> Any:
    """An app whose registration setting is `mode`."""

    @asynccontextmanager
    async def build(mode: str, client_ip: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
        auth = settings.auth.model_copy(update={"registration": mode})
        async with app_client(client_ip=client_ip, auth=auth) as client:
            yield client

    return build


async def an_admin(client: httpx.AsyncClient) -> dict[str, str]:
    """Made while registration is open: the first account, the instance's admin."""
    user = await register(client, "admin@example.com")
    assert user["role"] == "admin"
    return bearer((await login(client, "admin@example.com"))["access_token"])


async def invite(client: httpx.AsyncClient, as_admin: dict[str, str], **body: Any) -> str:
    made = await client.post("/api/admin/invites", json=body, headers=as_admin)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def registration(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "password": PASSWORD, **extra}


async def test_closed_registration_is_403_and_a_new_instance_is_told_to_use_the_cli(
    policy: Any,
) -> None:
    async with policy("closed") as client:
        refused = await client.post("/api/auth/register", json=registration("a@example.com"))
        assert "encurta users create" in assert_problem(refused, 403)["detail"]
    async with policy("open") as client:
        as_admin = await an_admin(client)
    async with policy("closed") as client:
        refused = await client.post("/api/auth/register", json=registration("b@example.com"))
        body = assert_problem(refused, 403)
        assert "closed" in body["detail"] and "encurta users create" not in body["detail"]

        # An admin still makes accounts, of either role; they log in as any other.
        made = await client.post(
            "/api/admin/users", json=registration("bob@example.com"), headers=as_admin
        )
        assert made.status_code == 201, made.text
        assert made.json()["role"] == "user" and "password" not in made.text
        second = await client.post(
            "/api/admin/users",
            json=registration("eve@example.com", role="admin", first_name="Eve"),
            headers=as_admin,
        )
        assert (second.json()["role"], second.json()["first_name"]) == ("admin", "Eve")
        assert (await login(client, "bob@example.com"))["access_token"]


async def test_only_an_admin_makes_accounts_and_bad_ones_are_named(policy: Any) -> None:
    async with policy("closed") as client:
        assert_problem(
            await client.post("/api/admin/users", json=registration("x@example.com")), 401
        )
    async with policy("open") as client:
        as_admin = await an_admin(client)
        await register(client, "user@example.com")
        as_user = bearer((await login(client, "user@example.com"))["access_token"])
        assert_problem(
            await client.post(
                "/api/admin/users", json=registration("x@example.com"), headers=as_user
            ),
            403,
        )
        for body, named in (
            ({"email": "not-an-email", "password": PASSWORD}, "email"),
            ({"email": "x@example.com", "password": "password123"}, "password"),
            ({"email": "x@example.com", "password": "short"}, "password"),
            ({"email": "x@example.com"}, "password"),
            (registration("x@example.com", role="root"), "role"),
            (registration("x@example.com", is_active=False), "is_active"),
        ):
            response = await client.post("/api/admin/users", json=body, headers=as_admin)
            assert_problem(response, 422, fields=[named])
        taken = await client.post(
            "/api/admin/users", json=registration("USER@example.com"), headers=as_admin
        )
        assert_problem(taken, 409)


async def test_an_invite_makes_one_account_and_is_gone_from_the_list(policy: Any) -> None:
    async with policy("open") as client:
        as_admin = await an_admin(client)
    async with policy("invite") as client:
        token = await invite(client, as_admin)
        listed = (await client.get("/api/admin/invites", headers=as_admin)).json()["items"]
        assert len(listed) == 1 and "token" not in listed[0] and token not in str(listed)
        assert listed[0]["expired"] is False and listed[0]["email"] is None

        made = await client.post(
            "/api/auth/register", json=registration("bob@example.com", invite=token)
        )
        assert made.status_code == 201, made.text
        assert made.json()["role"] == "user"
        again = await client.post(
            "/api/auth/register", json=registration("carl@example.com", invite=token)
        )
        assert "already been used" in assert_problem(again, 403, fields=["invite"])["detail"]
        assert (await client.get("/api/admin/invites", headers=as_admin)).json()["items"] == []


async def test_missing_unknown_expired_and_misaddressed_invites_are_refused(
    policy: Any, database_urls: dict[str, str]
) -> None:
    async with policy("invite") as client:
        # A new instance: nobody can invite yet, and the answer says what to do.
        missing = await client.post("/api/auth/register", json=registration("a@example.com"))
        body = assert_problem(missing, 422, fields=["invite"])
        assert "encurta users create" in body["errors"][0]["message"]
    async with policy("open") as client:
        as_admin = await an_admin(client)
    async with policy("invite") as client:
        missing = await client.post("/api/auth/register", json=registration("a@example.com"))
        assert_problem(missing, 422, fields=["invite"])
        unknown = await client.post(
            "/api/auth/register", json=registration("a@example.com", invite="no-such-invite")
        )
        assert_problem(unknown, 403, fields=["invite"])
        empty = await client.post(
            "/api/auth/register", json=registration("a@example.com", invite="")
        )
        assert_problem(empty, 422, fields=["invite"])

        for_ana = await invite(client, as_admin, email="Ana@Example.com")
        other = await client.post(
            "/api/auth/register", json=registration("bob@example.com", invite=for_ana)
        )
        assert "another email" in assert_problem(other, 403, fields=["invite"])["detail"]
        ana = await client.post(
            "/api/auth/register", json=registration("ANA@example.com", invite=for_ana)
        )
        assert ana.status_code == 201, ana.text

        late = await invite(client, as_admin, expires_in_hours=1)
        conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
        try:
            await conn.execute("UPDATE invites SET expires_at = now() - interval '1 second'")
        finally:
            await conn.close()
        expired = await client.post(
            "/api/auth/register", json=registration("late@example.com", invite=late)
        )
        assert "expired" in assert_problem(expired, 403, fields=["invite"])["detail"]
        listed = (await client.get("/api/admin/invites", headers=as_admin)).json()["items"]
        assert [item["expired"] for item in listed] == [True]


async def test_a_taken_email_leaves_the_invite_unused(policy: Any) -> None:
    async with policy("open") as client:
        as_admin = await an_admin(client)
    async with policy("invite") as client:
        token = await invite(client, as_admin)
        taken = await client.post(
            "/api/auth/register", json=registration("admin@example.com", invite=token)
        )
        assert_problem(taken, 409)
        made = await client.post(
            "/api/auth/register", json=registration("new@example.com", invite=token)
        )
        assert made.status_code == 201, made.text


async def test_one_invite_used_at_once_by_two_makes_exactly_one_account(policy: Any) -> None:
    async with policy("open") as client:
        as_admin = await an_admin(client)
        token = await invite(client, as_admin)
    async with (
        policy("invite", client_ip="203.0.113.8") as one,
        policy("invite", client_ip="203.0.113.9") as two,
    ):
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/auth/register", json=registration(f"racer{n}@example.com", invite=token)
                )
                for n, client in enumerate((one, two))
            )
        )
        assert sorted(answer.status_code for answer in answers) == [201, 403], answers
        listed = (await one.get("/api/admin/users", headers=as_admin)).json()
        assert listed["total"] == 2


async def test_revoked_invites_are_refused_and_bad_invite_requests_named(policy: Any) -> None:
    async with policy("open") as client:
        as_admin = await an_admin(client)
        await register(client, "user@example.com")
        as_user = bearer((await login(client, "user@example.com"))["access_token"])
    async with policy("invite") as client:
        token = await invite(client, as_admin)
        (listed,) = (await client.get("/api/admin/invites", headers=as_admin)).json()["items"]
        revoked = await client.delete(f"/api/admin/invites/{listed['id']}", headers=as_admin)
        assert revoked.status_code == 204
        assert_problem(
            await client.delete(f"/api/admin/invites/{listed['id']}", headers=as_admin), 404
        )
        assert_problem(await client.delete("/api/admin/invites/not-a-uuid", headers=as_admin), 404)
        refused = await client.post(
            "/api/auth/register", json=registration("bob@example.com", invite=token)
        )
        assert_problem(refused, 403, fields=["invite"])

        for body, named in (
            ({"expires_in_hours": 0}, "expires_in_hours"),
            ({"expires_in_hours": 721}, "expires_in_hours"),
            ({"expires_in_hours": "soon"}, "expires_in_hours"),
            ({"email": "nope"}, "email"),
            ({"uses": 2}, "uses"),
        ):
            response = await client.post("/api/admin/invites", json=body, headers=as_admin)
            assert_problem(response, 422, fields=[named])

        assert_problem(await client.post("/api/admin/invites", json={}, headers=as_user), 403)
        assert_problem(await client.get("/api/admin/invites", headers=as_user), 403)
        assert_problem(
            await client.delete(f"/api/admin/invites/{listed['id']}", headers=as_user), 403
        )
        assert_problem(await client.get("/api/admin/invites"), 401)


async def test_an_open_instance_ignores_an_invite(policy: Any) -> None:
    async with policy("open") as client:
        made = await client.post(
            "/api/auth/register", json=registration("a@example.com", invite="anything")
        )
        assert made.status_code == 201, made.text


async def test_an_invite_registers_no_one_once_its_maker_is_no_longer_an_admin(
    policy: Any,
) -> None:
    async with policy("open") as client:
        as_first = await an_admin(client)
        second = await register(client, "second@example.com")
        promoted = await client.patch(
            f"/api/admin/users/{second['id']}", json={"role": "admin"}, headers=as_first
        )
        assert promoted.status_code == 200, promoted.text
        as_second = bearer((await login(client, "second@example.com"))["access_token"])
    async with policy("invite") as client:
        token = await invite(client, as_second)
        demoted = await client.patch(
            f"/api/admin/users/{second['id']}", json={"role": "user"}, headers=as_first
        )
        assert demoted.status_code == 200, demoted.text

        refused = await client.post(
            "/api/auth/register", json=registration("c@example.com", invite=token)
        )

        assert "no longer an admin" in assert_problem(refused, 403)["detail"]
        # Made again by an admin, an invite works.
        fresh = await invite(client, as_first)
        made = await client.post(
            "/api/auth/register", json=registration("c@example.com", invite=fresh)
        )
        assert made.status_code == 201, made.text
