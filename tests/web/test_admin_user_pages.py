"""The admin pages of auth over HTTP: accounts (disable, enable, role, create) and invites.

Each change is checked where it takes effect: the account's API calls, its sign-in, the
API's list of accounts; and the refusals: a non-admin, another site's form, the last admin.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.modules.auth.settings import AuthSettings
from tests.conftest import FAST_ARGON2, AppFactory
from tests.support.accounts import EMAIL, PASSWORD

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://encurta.test"}
HTML = {"Accept": "text/html"}
USER = "bea@example.com"


@asynccontextmanager
async def browser_beside(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser (its own cookies) on the same app."""
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as other:
        yield other


async def sign_up(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/signup", data={"email": email, "password": PASSWORD}, headers=ORIGIN
    )
    assert response.status_code == 303, response.text


async def accounts(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    listed = await client.get("/api/admin/users")
    assert listed.status_code == 200, listed.text
    return {u["email"]: u for u in listed.json()["items"]}


async def act(client: httpx.AsyncClient, user_id: str, action: str) -> httpx.Response:
    return await client.post(
        f"/admin/users/{user_id}", data={"action": action, "page": "1"}, headers=ORIGIN
    )


async def test_an_admin_disables_and_enables_a_user(client: httpx.AsyncClient) -> None:
    await sign_up(client, EMAIL)  # the first account: the admin
    async with browser_beside(client) as user:
        await sign_up(user, USER)
        page = await client.get("/admin/users", headers=HTML)
        assert page.status_code == 200
        assert USER in page.text and EMAIL in page.text
        assert 'aria-current="page">Users</a>' in page.text
        assert f'aria-label="Disable {USER}"' in page.text
        user_id = (await accounts(client))[USER]["id"]

        assert (await user.get("/admin/users", headers=HTML)).status_code == 403  # not an admin
        assert (await act(user, user_id, "disable")).status_code == 403
        forged = await client.post(f"/admin/users/{user_id}", data={"action": "disable"})
        assert forged.status_code == 403  # no Origin
        assert (await accounts(client))[USER]["is_active"] is True

        disabled = await act(client, user_id, "disable")
        assert disabled.status_code == 303
        shown = await client.get(disabled.headers["location"], headers=HTML)
        assert f"{USER} is disabled" in shown.text and "disabled</span>" in shown.text
        assert (await accounts(client))[USER]["is_active"] is False
        # The user's calls stop at once; a page sends it to sign in, which is refused.
        assert (await user.get("/api/auth/me")).status_code == 401
        away = await user.get("/account", headers=HTML)  # auth's page: at once
        assert away.headers["location"] == "/auth/refresh?next=/account"
        for _ in range(100):  # the shortener's pages, once the bus brings the news
            links = await user.get("/links", headers=HTML)
            if links.status_code == 303:
                break
            await asyncio.sleep(0.05)
        assert links.headers["location"] == "/auth/refresh?next=/links"
        signin = await user.get(away.headers["location"])
        assert signin.headers["location"].startswith("/login")
        refused = await user.post(
            "/login", data={"email": USER, "password": PASSWORD}, headers=ORIGIN
        )
        assert refused.status_code == 403 and "This account is disabled." in refused.text

        assert (await act(client, user_id, "enable")).status_code == 303
        assert (await accounts(client))[USER]["is_active"] is True
        back = await user.post("/login", data={"email": USER, "password": PASSWORD}, headers=ORIGIN)
        assert back.status_code == 303


async def test_roles_change_but_the_last_admin_stays(client: httpx.AsyncClient) -> None:
    await sign_up(client, EMAIL)
    async with browser_beside(client) as user:
        await sign_up(user, USER)
        ids = {email: u["id"] for email, u in (await accounts(client)).items()}
        assert (await user.get("/api/admin/users")).status_code == 403

        assert (await act(client, ids[USER], "make-admin")).status_code == 303
        assert (await accounts(client))[USER]["role"] == "admin"
        assert (await user.get("/api/admin/users")).status_code == 200  # at once
        assert (await user.get("/admin/users", headers=HTML)).status_code == 200
        assert (await act(client, ids[USER], "make-user")).status_code == 303
        assert (await accounts(client))[USER]["role"] == "user"
        assert (await user.get("/admin/users", headers=HTML)).status_code == 403

        for action in ("make-user", "disable"):
            last = await act(client, ids[EMAIL], action)
            assert last.status_code == 409
            assert "must keep at least one active admin" in last.text
        me = (await accounts(client))[EMAIL]
        assert me["role"] == "admin" and me["is_active"] is True
        unknown = await act(client, "00000000-0000-0000-0000-000000000000", "disable")
        assert unknown.status_code == 404
        assert (await act(client, ids[USER], "explode")).status_code == 422


async def test_an_admin_creates_an_account(client: httpx.AsyncClient) -> None:
    await sign_up(client, EMAIL)
    made = await client.post(
        "/admin/users",
        data={"email": "cid@example.com", "password": PASSWORD, "admin": "1"},
        headers=ORIGIN,
    )
    assert made.status_code == 303, made.text
    assert (
        "cid@example.com is created"
        in (await client.get(made.headers["location"], headers=HTML)).text
    )
    assert (await accounts(client))["cid@example.com"]["role"] == "admin"
    signed_in = await client.post(
        "/api/auth/login", json={"email": "cid@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 200
    weak = await client.post(
        "/admin/users", data={"email": "dee@example.com", "password": "123"}, headers=ORIGIN
    )
    assert weak.status_code == 422 and 'id="password-error"' in weak.text
    assert 'value="dee@example.com"' in weak.text
    taken = await client.post(
        "/admin/users", data={"email": "CID@example.com", "password": PASSWORD}, headers=ORIGIN
    )
    assert taken.status_code == 409 and 'id="email-error"' in taken.text
    assert "dee@example.com" not in await accounts(client)
    forged = await client.post(
        "/admin/users", data={"email": "eve@example.com", "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert "eve@example.com" not in await accounts(client)


async def test_invites_are_made_used_and_revoked(app_client: AppFactory) -> None:
    async with app_client() as first:
        await sign_up(first, EMAIL)  # the admin, while registration is open
    by_invite = AuthSettings(argon2=FAST_ARGON2, registration="invite")
    async with app_client(auth=by_invite) as client:
        signed_in = await client.post(
            "/login", data={"email": EMAIL, "password": PASSWORD}, headers=ORIGIN
        )
        assert signed_in.status_code == 303
        page = await client.get("/admin/invites", headers=HTML)
        assert page.status_code == 200 and "No unused invites." in page.text
        assert 'aria-current="page">Invites</a>' in page.text

        made = await client.post(
            "/admin/invites", data={"email": USER, "hours": "24"}, headers=ORIGIN
        )
        assert made.status_code == 201, made.text
        link = re.search(r'data-copy="(http://encurta.test/signup\?invite=([\w-]+))"', made.text)
        assert link is not None
        token = link.group(2)
        again = await client.get("/admin/invites", headers=HTML)
        assert token not in again.text and USER in again.text  # shown once, listed
        loose = await client.post("/admin/invites", data={"hours": "1"}, headers=ORIGIN)
        assert loose.status_code == 201
        bad = await client.post("/admin/invites", data={"hours": "9999"}, headers=ORIGIN)
        assert bad.status_code == 422 and 'id="hours-error"' in bad.text
        forged = await client.post("/admin/invites", data={"hours": "1"})
        assert forged.status_code == 403
        invites = (await client.get("/api/admin/invites")).json()["items"]
        assert len(invites) == 2

        async with browser_beside(client) as invitee:
            form = await invitee.get(f"/signup?invite={token}", headers=HTML)
            assert f'value="{token}"' in form.text  # the link fills the field in
            wrong = await invitee.post(
                "/signup",
                data={"email": "other@example.com", "password": PASSWORD, "invite": token},
                headers=ORIGIN,
            )
            assert wrong.status_code == 403 and "another email address" in wrong.text
            used = await invitee.post(
                "/signup",
                data={"email": USER, "password": PASSWORD, "invite": token},
                headers=ORIGIN,
            )
            assert used.status_code == 303, used.text
            assert (await invitee.get("/admin/invites", headers=HTML)).status_code == 403
            refused = await invitee.post("/admin/invites", data={"hours": "1"}, headers=ORIGIN)
            assert refused.status_code == 403
        assert USER in await accounts(client)

        loose_id = next(i["id"] for i in (await client.get("/api/admin/invites")).json()["items"])
        assert (
            await client.post(f"/admin/invites/{loose_id}/revoke")
        ).status_code == 403  # no Origin
        revoked = await client.post(f"/admin/invites/{loose_id}/revoke", headers=ORIGIN)
        assert revoked.headers["location"] == "/admin/invites?revoked"
        assert (await client.get("/api/admin/invites")).json()["items"] == []
        listed = await client.get("/admin/invites?revoked", headers=HTML)
        assert "The invite is revoked" in listed.text and "No unused invites." in listed.text
        twice = await client.post(f"/admin/invites/{loose_id}/revoke", headers=ORIGIN)
        assert twice.status_code == 404
