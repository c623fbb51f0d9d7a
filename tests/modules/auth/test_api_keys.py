"""API keys: shown once, limited to their scopes, refused everywhere once revoked; and
every module stops an account's access tokens once it is disabled or its role is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from app.kernel.access import is_api_key
from tests.conftest import asyncpg_dsn
from tests.support.accounts import bearer, login, register
from tests.support.problems import assert_problem
from tests.support.waiting import eventually


async def signed_in(client: httpx.AsyncClient, email: str) -> tuple[dict[str, Any], dict[str, str]]:
    user = await register(client, email)
    return user, bearer((await login(client, email))["access_token"])


async def new_key(
    client: httpx.AsyncClient, headers: dict[str, str], scopes: list[str], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/keys", json={"name": "ci", "scopes": scopes, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def status(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> int:
    return (await client.request(method, path, **kwargs)).status_code


async def test_a_key_is_shown_once_and_works_within_its_scopes_in_every_module(
    client: httpx.AsyncClient,
) -> None:
    _, session = await signed_in(client, "ana@example.com")
    made = await client.post("/api/links", json={"url": "https://example.com/a"}, headers=session)
    assert made.status_code == 201, made.text
    code = made.json()["code"]

    key = await new_key(client, session, ["links:read"])

    assert is_api_key(key["key"]) and key["key"].startswith("enc_")
    assert key["prefix"] == key["key"][:10] and key["scopes"] == ["links:read"]
    listed = (await client.get("/api/keys", headers=session)).json()["items"]
    assert [item["id"] for item in listed] == [key["id"]]
    assert "key" not in listed[0]  # never shown again
    as_key = {"X-Api-Key": key["key"]}
    # The shortener hears of the key through its inbox: wait for it to be admitted.
    await eventually(
        lambda: status(client, "GET", "/api/links", headers=as_key), lambda s: s == 200
    )
    links = await client.get("/api/links", headers=as_key)
    assert [item["code"] for item in links.json()["items"]] == [code]
    # Also as a Bearer credential.
    by_bearer = await client.get(f"/api/links/{code}", headers=bearer(key["key"]))
    assert by_bearer.status_code == 200, by_bearer.text
    refused = await client.post("/api/links", json={"url": "https://example.com/b"}, headers=as_key)
    assert_problem(refused, 403)
    assert "links:write" in refused.json()["detail"]
    stats = await client.get(f"/api/stats/{code}", headers=as_key)
    assert_problem(stats, 403)
    assert "stats:read" in stats.json()["detail"]
    # Its owner sees that it was used: the shortener told auth, through the bus.
    listed = await eventually(
        lambda: client.get("/api/keys", headers=session),
        lambda r: r.json()["items"][0]["last_used_at"] is not None,
        what="the key's last use reaches auth",
    )
    assert datetime.fromisoformat(listed.json()["items"][0]["last_used_at"]) <= datetime.now(UTC)
    # A key cannot manage keys or the account.
    assert_problem(await client.get("/api/keys", headers=as_key), 403)
    assert_problem(
        await client.post(
            "/api/keys", json={"name": "x", "scopes": ["links:read"]}, headers=as_key
        ),
        403,
    )


async def test_a_revoked_key_stops_working_in_every_module(client: httpx.AsyncClient) -> None:
    _, session = await signed_in(client, "ana@example.com")
    made = await client.post("/api/links", json={"url": "https://example.com/a"}, headers=session)
    code = made.json()["code"]
    key = await new_key(client, session, ["links:read", "links:write", "stats:read"])
    as_key = {"X-Api-Key": key["key"]}
    await eventually(
        lambda: status(client, "GET", f"/api/stats/{code}", headers=as_key), lambda s: s == 200
    )
    assert await status(client, "GET", "/api/links", headers=as_key) == 200

    revoked = await client.delete(f"/api/keys/{key['id']}", headers=session)

    assert revoked.status_code == 204
    await eventually(
        lambda: status(client, "GET", "/api/links", headers=as_key), lambda s: s == 401
    )
    await eventually(
        lambda: status(client, "GET", f"/api/stats/{code}", headers=as_key), lambda s: s == 401
    )
    assert_problem(await client.get("/api/links", headers=as_key), 401)
    assert (await client.get("/api/keys", headers=session)).json()["items"] == []
    assert_problem(await client.delete(f"/api/keys/{key['id']}", headers=session), 404)


async def test_keys_refuse_bad_input_naming_the_field(client: httpx.AsyncClient) -> None:
    _, admin = await signed_in(client, "admin@example.com")
    _, user = await signed_in(client, "user@example.com")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "scopes": ["links:delete"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["links:read"]}, "name"),
        ({"name": "x", "scopes": ["links:read"], "expires_at": past}, "expires_at"),
        # Past year 9999 once in UTC: refused, not a 500 from the database driver.
        (
            {"name": "x", "scopes": ["links:read"], "expires_at": "9999-12-31T23:59:59-14:00"},
            "expires_at",
        ),
        ({"name": "x", "scopes": ["links:read"], "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        answer = await client.post("/api/keys", json=body, headers=user)
        assert_problem(answer, 422)
        assert field in answer.text, (body, answer.text)
    # Only an admin's key may hold the admin scope.
    refused = await client.post("/api/keys", json={"name": "x", "scopes": ["admin"]}, headers=user)
    assert_problem(refused, 422)
    assert "scopes" in refused.text
    assert (await client.get("/api/keys", headers=user)).json()["items"] == []
    await new_key(client, admin, ["admin"])
    # A key of the wrong shape, or with a broken checksum, is refused before any lookup.
    assert_problem(await client.get("/api/links", headers={"X-Api-Key": "enc_nope"}), 401)
    forged = "enc_" + "A" * 46
    assert_problem(await client.get("/api/links", headers={"X-Api-Key": forged}), 401)
    assert_problem(await client.get("/api/keys"), 401)


async def test_an_expired_key_is_refused(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    _, session = await signed_in(client, "ana@example.com")
    later = datetime.now(UTC) + timedelta(days=1)
    key = await new_key(client, session, ["links:read"], expires_at=later.isoformat())
    as_key = {"X-Api-Key": key["key"]}
    await eventually(
        lambda: status(client, "GET", "/api/links", headers=as_key), lambda s: s == 200
    )

    # Its expiry comes (moved, rather than waited for, in the shortener's copy).
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    try:
        await conn.execute(
            "UPDATE access_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1",
            UUID(key["id"]),
        )
    finally:
        await conn.close()

    assert_problem(await client.get("/api/links", headers=as_key), 401)


async def test_an_admin_key_administers_and_a_users_key_does_not(
    client: httpx.AsyncClient,
) -> None:
    _, admin = await signed_in(client, "admin@example.com")
    key = await new_key(client, admin, ["admin"])
    listed = await client.get("/api/admin/users", headers={"X-Api-Key": key["key"]})
    assert listed.status_code == 200, listed.text
    narrow = await new_key(client, admin, ["links:read"])
    refused = await client.get("/api/admin/users", headers={"X-Api-Key": narrow["key"]})
    assert_problem(refused, 403)
    assert "admin" in refused.json()["detail"]


async def test_a_disabled_accounts_tokens_and_keys_stop_in_every_module(
    client: httpx.AsyncClient,
) -> None:
    _, admin = await signed_in(client, "admin@example.com")
    user, session = await signed_in(client, "user@example.com")
    made = await client.post("/api/links", json={"url": "https://example.com/a"}, headers=session)
    code = made.json()["code"]
    key = await new_key(client, session, ["links:read", "stats:read"])
    as_key = {"X-Api-Key": key["key"]}
    await eventually(
        lambda: status(client, "GET", f"/api/stats/{code}", headers=as_key), lambda s: s == 200
    )

    disabled = await client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=admin
    )

    assert disabled.status_code == 200, disabled.text
    for path in ("/api/links", f"/api/stats/{code}"):
        for headers in (session, as_key):
            await eventually(
                lambda p=path, h=headers: status(client, "GET", p, headers=h),  # type: ignore[misc]
                lambda s: s == 401,
                what=f"{path} refused",
            )
    assert_problem(await client.get("/api/auth/me", headers=session), 401)

    # Enabled again: a new login works everywhere; the old token stays refused.
    enabled = await client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": True}, headers=admin
    )
    assert enabled.status_code == 200, enabled.text
    fresh = bearer((await login(client, "user@example.com"))["access_token"])
    await eventually(lambda: status(client, "GET", "/api/links", headers=fresh), lambda s: s == 200)
    assert_problem(await client.get("/api/links", headers=session), 401)


async def test_a_role_taken_away_counts_at_once_for_its_keys_and_tokens(
    client: httpx.AsyncClient,
) -> None:
    _, as_first = await signed_in(client, "first@example.com")
    second = await register(client, "second@example.com")
    promoted = await client.patch(
        f"/api/admin/users/{second['id']}", json={"role": "admin"}, headers=as_first
    )
    assert promoted.status_code == 200, promoted.text
    as_second_admin = bearer((await login(client, "second@example.com"))["access_token"])
    key = await new_key(client, as_second_admin, ["admin"])
    assert await status(client, "GET", "/api/admin/users", headers={"X-Api-Key": key["key"]}) == 200

    demoted = await client.patch(
        f"/api/admin/users/{second['id']}", json={"role": "user"}, headers=as_first
    )

    assert demoted.status_code == 200, demoted.text
    # Auth reads roles from its own table; the key's admin scope no longer makes an admin.
    assert_problem(await client.get("/api/admin/users", headers={"X-Api-Key": key["key"]}), 403)
    assert_problem(await client.get("/api/admin/users", headers=as_second_admin), 403)
