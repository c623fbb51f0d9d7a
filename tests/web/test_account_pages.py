"""The account page over HTTP: change the password, delete the account, a key's expiry.

What a browser does not show: the other sessions really end, this browser's new cookies
really work, the account is really gone, and another site's form is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.kernel.session import REFRESH_COOKIE, SESSION_COOKIE
from tests.support.accounts import EMAIL, PASSWORD, login, refresh, register

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://encurta.test"}
HTML = {"Accept": "text/html"}
NEW_PASSWORD = "another quite unusual passphrase"


async def sign_up(client: httpx.AsyncClient, email: str = EMAIL) -> None:
    response = await client.post(
        "/signup", data={"email": email, "password": PASSWORD}, headers=ORIGIN
    )
    assert response.status_code == 303, response.text


async def test_the_account_page_shows_who_you_are(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    page = await client.get("/account", headers=HTML)
    assert page.status_code == 200
    assert EMAIL in page.text and "<dd>admin</dd>" in page.text  # the first account
    assert '<label for="current_password">Current password</label>' in page.text
    assert '<label for="new_password">New password</label>' in page.text
    assert 'href="/account/delete"' in page.text
    assert " style=" not in page.text and "<script>" not in page.text
    client.cookies.clear()
    away = await client.get("/account", headers=HTML)
    assert away.status_code == 303 and away.headers["location"] == "/auth/refresh?next=/account"


async def test_changing_the_password_keeps_this_browser_and_ends_the_others(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    other = await login(client)  # another session of the same account (its cookies unchanged)
    wrong = await client.post(
        "/account/password",
        data={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=ORIGIN,
    )
    assert wrong.status_code == 403
    assert 'id="current_password-error">The current password is wrong.' in wrong.text
    weak = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "short"},
        headers=ORIGIN,
    )
    assert weak.status_code == 422 and 'id="new_password-error"' in weak.text
    assert 'aria-invalid="true"' in weak.text
    same = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=ORIGIN,
    )
    assert same.status_code == 422 and "It is the current password" in same.text
    forged = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert forged.status_code == 403  # no Origin: refused before anything changes
    assert (
        await client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    ).is_success

    changed = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=ORIGIN,
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/account?changed"
    set_cookies = {c.split("=", 1)[0] for c in changed.headers.get_list("set-cookie")}
    assert set_cookies == {SESSION_COOKIE, REFRESH_COOKIE}
    old = await client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert old.status_code == 401
    await login(client, password=NEW_PASSWORD)
    # This browser goes on with its new cookies: its access token, and its refresh token.
    assert (await client.get("/api/auth/me")).json()["email"] == EMAIL
    page = await client.get("/account?changed", headers=HTML)
    assert page.status_code == 200 and "Your password is changed." in page.text
    client.cookies.delete(SESSION_COOKIE)
    renewed = await client.get("/auth/refresh?next=/account")
    assert renewed.headers["location"] == "/account"
    # The other session is over.
    assert (await refresh(client, other["refresh_token"])).status_code == 401
    gone = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert gone.status_code == 401


async def test_deleting_the_account_asks_for_the_password(client: httpx.AsyncClient) -> None:
    await register(client, email="first@example.com")  # the admin; this one is a user
    await sign_up(client)
    asked = await client.get("/account/delete", headers=HTML)
    assert asked.status_code == 200 and "Delete your account?" in asked.text
    assert '<label for="password">Password</label>' in asked.text
    forged = await client.post("/account/delete", data={"password": PASSWORD})
    assert forged.status_code == 403
    wrong = await client.post("/account/delete", data={"password": "nope nope"}, headers=ORIGIN)
    assert wrong.status_code == 403 and 'id="password-error">The password is wrong.' in wrong.text
    assert (await client.get("/api/auth/me")).is_success

    deleted = await client.post("/account/delete", data={"password": PASSWORD}, headers=ORIGIN)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/login?deleted"
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/auth/me", headers=HTML)).status_code == 401
    refused = await client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 401
    notice = await client.get("/login?deleted", headers=HTML)
    assert "Your account is deleted." in notice.text


async def test_the_last_admin_cannot_delete_the_account(client: httpx.AsyncClient) -> None:
    await sign_up(client)  # the first account: the instance's only admin
    await register(client, email="user@example.com")
    refused = await client.post("/account/delete", data={"password": PASSWORD}, headers=ORIGIN)
    assert refused.status_code == 409
    assert "You are the last active admin" in refused.text
    assert (await client.get("/api/auth/me")).json()["role"] == "admin"


async def test_a_key_may_expire_and_its_expiry_is_listed(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    made = await client.post(
        "/account/keys",
        data={"name": "Temporary", "scopes": "links:read", "expires": day.isoformat()},
        headers=ORIGIN,
    )
    assert made.status_code == 201, made.text
    assert f"expires {day.isoformat()}" in made.text
    keys = (await client.get("/api/keys")).json()["items"]
    assert [k["expires_at"][:10] for k in keys] == [day.isoformat()]
    past = await client.post(
        "/account/keys",
        data={"name": "Late", "scopes": "links:read", "expires": "2020-01-01"},
        headers=ORIGIN,
    )
    assert past.status_code == 422 and 'id="expires-error"' in past.text
    assert 'value="2020-01-01"' in past.text
    assert len((await client.get("/api/keys")).json()["items"]) == 1
    assert re.search(r"Temporary", (await client.get("/account/keys", headers=HTML)).text)
