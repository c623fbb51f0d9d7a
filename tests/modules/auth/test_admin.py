"""The admin API for accounts: only admins, a disabled account loses its sessions, and the
instance always keeps an active admin."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem


async def signed_in(client: httpx.AsyncClient, email: str) -> tuple[dict[str, Any], dict[str, str]]:
    user = await register(client, email)
    tokens = await login(client, email)
    return user, bearer(tokens["access_token"])


async def test_only_an_admin_lists_and_changes_accounts(client: httpx.AsyncClient) -> None:
    admin, as_admin = await signed_in(client, "admin@example.com")
    _, as_user = await signed_in(client, "user@example.com")

    listed = await client.get("/api/admin/users", headers=as_admin)
    assert listed.status_code == 200, listed.text
    assert [item["email"] for item in listed.json()["items"]] == [
        "admin@example.com",
        "user@example.com",
    ]
    assert listed.json()["total"] == 2
    assert_problem(await client.get("/api/admin/users", headers=as_user), 403)
    assert_problem(await client.get("/api/admin/users"), 401)
    assert_problem(
        await client.patch(
            f"/api/admin/users/{admin['id']}", json={"is_active": False}, headers=as_user
        ),
        403,
    )


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end_until_enabled(
    client: httpx.AsyncClient,
) -> None:
    _, as_admin = await signed_in(client, "admin@example.com")
    user = await register(client, "user@example.com")
    session = await login(client, "user@example.com")

    disabled = await client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=as_admin
    )

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    refused = await client.post(
        "/api/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    )
    assert_problem(refused, 403)
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert_problem(refreshed, 401)

    await client.patch(f"/api/admin/users/{user['id']}", json={"is_active": True}, headers=as_admin)
    assert (await login(client, "user@example.com"))["access_token"]


async def test_a_promoted_user_administers_and_the_last_admin_cannot_step_down(
    client: httpx.AsyncClient,
) -> None:
    admin, as_admin = await signed_in(client, "admin@example.com")
    user, as_user = await signed_in(client, "user@example.com")

    alone = await client.patch(
        f"/api/admin/users/{admin['id']}", json={"role": "user"}, headers=as_admin
    )
    assert_problem(alone, 409)
    promoted = await client.patch(
        f"/api/admin/users/{user['id']}", json={"role": "admin"}, headers=as_admin
    )
    assert promoted.json()["role"] == "admin"
    assert (await client.get("/api/admin/users", headers=as_user)).status_code == 200

    stepped_down = await client.patch(
        f"/api/admin/users/{admin['id']}", json={"role": "user"}, headers=as_admin
    )
    assert stepped_down.json()["role"] == "user"
    # Known from auth's own table at each request: the old admin's token no longer will do.
    assert_problem(await client.get("/api/admin/users", headers=as_admin), 403)


async def test_bad_changes_are_422_naming_the_field_and_unknown_accounts_404(
    client: httpx.AsyncClient,
) -> None:
    admin, as_admin = await signed_in(client, "admin@example.com")

    for body, named in (
        ({"role": "root"}, "role"),
        ({"is_active": None}, "is_active"),
        ({"email": "x@example.com"}, "email"),
    ):
        response = await client.patch(
            f"/api/admin/users/{admin['id']}", json=body, headers=as_admin
        )
        assert_problem(response, 422, fields=[named])
    for unknown in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = await client.patch(
            f"/api/admin/users/{unknown}", json={"is_active": True}, headers=as_admin
        )
        assert_problem(response, 404)


async def test_the_last_admin_cannot_delete_their_account_while_others_remain(
    client: httpx.AsyncClient,
) -> None:
    admin, as_admin = await signed_in(client, "admin@example.com")
    user, as_user = await signed_in(client, "user@example.com")

    refused = await client.request(
        "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=as_admin
    )
    assert_problem(refused, 409)
    assert (await client.get("/api/admin/users", headers=as_admin)).status_code == 200

    # Another admin first; then the first may go, and the user may go too.
    await client.patch(f"/api/admin/users/{user['id']}", json={"role": "admin"}, headers=as_admin)
    for headers in (as_admin, as_user):
        gone = await client.request(
            "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=headers
        )
        assert gone.status_code == 204, gone.text
    assert admin["role"] == "admin"


async def test_an_admin_demoted_meanwhile_changes_nothing(client: httpx.AsyncClient) -> None:
    first, as_first = await signed_in(client, "first@example.com")
    second, as_second = await signed_in(client, "second@example.com")
    await client.patch(f"/api/admin/users/{second['id']}", json={"role": "admin"}, headers=as_first)

    # The second admin demotes the first; the first's next change is refused, not applied.
    await client.patch(f"/api/admin/users/{first['id']}", json={"role": "user"}, headers=as_second)
    refused = await client.patch(
        f"/api/admin/users/{second['id']}", json={"is_active": False}, headers=as_first
    )

    assert_problem(refused, 403)
    listed = (await client.get("/api/admin/users", headers=as_second)).json()["items"]
    assert [(u["email"], u["role"], u["is_active"]) for u in listed] == [
        ("first@example.com", "user", True),
        ("second@example.com", "admin", True),
    ]
