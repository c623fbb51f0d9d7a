"""The shortener's administration: every user's links, disabling one, blocked domains.

The first account of an instance is its admin (auth), and its access token says so.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.modules.shortener.helpers import ShortenerDb
from tests.modules.shortener.test_express import answered, head_of
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem

UPDATED = "shortener.link_updated.v1"
BLOCKED = "shortener.domain_blocked.v1"


async def admin_and_user(client: httpx.AsyncClient) -> tuple[Account, Account]:
    admin = await new_account(client, "admin@example.com")  # the first: the admin
    user = await new_account(client, "user@example.com")
    return admin, user


async def disable(
    client: httpx.AsyncClient, admin: Account, code: str, **body: Any
) -> dict[str, Any]:
    response = await client.patch(
        f"/api/admin/links/{code}", json={"disabled": True, **body}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    link: dict[str, Any] = response.json()
    return link


async def block(client: httpx.AsyncClient, admin: Account, domain: str) -> httpx.Response:
    return await client.post(
        "/api/admin/blocked-domains", json={"domain": domain}, headers=admin.headers
    )


ADMIN_CALLS = [
    ("GET", "/api/admin/links", None),
    ("PATCH", "/api/admin/links/somecode", {"disabled": True}),
    ("GET", "/api/admin/blocked-domains", None),
    ("POST", "/api/admin/blocked-domains", {"domain": "example.org"}),
    ("DELETE", "/api/admin/blocked-domains/example.org", None),
    ("GET", "/api/stats/orphans", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
async def test_only_admins_may_and_anonymous_callers_are_401(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    _, user = await admin_and_user(client)
    await shorten(client, user, code="somecode")

    as_user = await client.request(method, path, json=body, headers=user.headers)
    anonymous = await client.request(method, path, json=body)

    assert assert_problem(as_user, 403)["detail"]
    assert_problem(anonymous, 401)
    assert (await client.get("/somecode")).status_code == 302


async def test_an_admin_lists_every_users_links_with_their_owners_and_searches_them(
    client: httpx.AsyncClient,
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, "https://shop.example/a", code="usersale", title="Sale")
    await shorten(client, admin, "https://blog.example/b", code="adminpost")
    await shorten(client, user, "https://shop.example/gone", code="deleted")
    assert (await client.delete("/api/links/deleted", headers=user.headers)).status_code == 204

    listed = await client.get("/api/admin/links", headers=admin.headers)
    found = await client.get("/api/admin/links", params={"q": "SHOP"}, headers=admin.headers)

    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2
    owners = {item["code"]: item["owner_id"] for item in body["items"]}
    assert owners == {"usersale": str(user.id), "adminpost": str(admin.id)}
    assert [item["code"] for item in found.json()["items"]] == ["usersale"]
    assert found.json()["items"][0]["short_url"] == "http://encurta.test/usersale"
    bad = await client.get("/api/admin/links", params={"per_page": 0}, headers=admin.headers)
    assert_problem(bad, 422, fields=["per_page"])


async def test_a_disabled_link_answers_410_with_the_reason_until_an_admin_enables_it(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, code="phish")
    assert (await client.get("/phish")).status_code == 302  # cached now

    changed = await disable(client, admin, "phish", reason="Reported as phishing")

    assert (changed["disabled"], changed["disabled_reason"]) == (True, "Reported as phishing")
    assert changed["owner_id"] == str(user.id)
    gone = assert_problem(await client.get("/phish"), 410)
    assert "Reported as phishing" in gone["detail"]
    assert (await client.head("/phish")).status_code == 410
    # The owner sees it, and cannot undo it.
    own = (await client.get("/api/links/phish", headers=user.headers)).json()
    assert (own["disabled"], own["disabled_reason"]) == (True, "Reported as phishing")
    undo = await client.patch("/api/links/phish", json={"disabled": False}, headers=user.headers)
    assert_problem(undo, 422, fields=["disabled"])
    retitled = await client.patch("/api/links/phish", json={"title": "x"}, headers=user.headers)
    assert retitled.json()["disabled"] is True
    assert_problem(await client.get("/phish"), 410)
    [*_, event] = await ShortenerDb(database_urls).outbox(UPDATED)
    assert event["payload"]["disabled"] is True
    assert event["payload"]["disabled_reason"] == "Reported as phishing"

    enabled = await client.patch(
        "/api/admin/links/phish", json={"disabled": False}, headers=admin.headers
    )

    assert (enabled.json()["disabled"], enabled.json()["disabled_reason"]) == (False, None)
    assert (await client.get("/phish")).status_code == 302


async def test_a_link_disabled_without_a_reason_says_an_admin_disabled_it(
    client: httpx.AsyncClient,
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, code="quiet")

    await disable(client, admin, "quiet")

    assert "disabled" in assert_problem(await client.get("/quiet"), 410)["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status", "named"),
    [
        ("/api/admin/links/nosuch", {"disabled": True}, 404, None),
        ("/api/admin/links/bad.code", {"disabled": True}, 404, None),
        ("/api/admin/links/target", {}, 422, ["disabled"]),
        ("/api/admin/links/target", {"disabled": "maybe"}, 422, ["disabled"]),
        ("/api/admin/links/target", {"disabled": True, "reason": "x" * 501}, 422, ["reason"]),
        ("/api/admin/links/target", {"disabled": False, "reason": "why"}, 422, ["reason"]),
        ("/api/admin/links/target", {"disabled": True, "title": "x"}, 422, ["title"]),
    ],
)
async def test_a_bad_admin_change_is_a_4xx_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    status: int,
    named: list[str] | None,
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, code="target")

    response = await client.patch(path, json=body, headers=admin.headers)

    assert_problem(response, status, fields=named)
    assert (await client.get("/target")).status_code == 302


async def test_a_deleted_link_cannot_be_disabled(client: httpx.AsyncClient) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, code="bygone")
    assert (await client.delete("/api/links/bygone", headers=user.headers)).status_code == 204

    response = await client.patch(
        "/api/admin/links/bygone", json={"disabled": True}, headers=admin.headers
    )

    assert_problem(response, 404)


async def test_a_blocked_domain_refuses_new_links_and_its_links_answer_410_until_unblocked(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, "https://evil.example/login", code="apex")
    await shorten(client, user, "https://www.Evil.example:8443/x", code="sub")
    await shorten(client, user, "https://notevil.example/", code="lookalike")
    for code in ("apex", "sub", "lookalike"):
        assert (await client.get(f"/{code}")).status_code == 302  # all cached

    blocked = await block(client, admin, "HTTPS://EVIL.example./anything")

    assert blocked.status_code == 201, blocked.text
    assert blocked.json()["domain"] == "evil.example"
    for code in ("apex", "sub"):
        assert "evil.example" in assert_problem(await client.get(f"/{code}"), 410)["detail"]
    assert (await client.get("/lookalike")).status_code == 302
    for url in ("https://evil.example/", "http://deep.sub.EVIL.example/p"):
        refused = await client.post("/api/links", json={"url": url}, headers=user.headers)
        assert_problem(refused, 422, fields=["url"])
    moved = await client.patch(
        "/api/links/lookalike", json={"url": "https://a.evil.example/"}, headers=user.headers
    )
    assert_problem(moved, 422, fields=["url"])
    again = await block(client, admin, "evil.example")
    assert again.status_code == 200
    listed = await client.get("/api/admin/blocked-domains", headers=admin.headers)
    assert [item["domain"] for item in listed.json()["items"]] == ["evil.example"]
    assert len(await ShortenerDb(database_urls).outbox(BLOCKED)) == 1

    unblocked = await client.delete(
        "/api/admin/blocked-domains/EVIL.example", headers=admin.headers
    )

    assert unblocked.status_code == 204
    for code in ("apex", "sub"):
        assert (await client.get(f"/{code}")).status_code == 302
    await shorten(client, user, "https://evil.example/again")
    assert (await client.get("/api/admin/blocked-domains", headers=admin.headers)).json() == {
        "items": []
    }
    assert_problem(
        await client.delete("/api/admin/blocked-domains/evil.example", headers=admin.headers),
        404,
    )


async def test_an_idn_domain_is_blocked_in_the_form_links_are_stored_in(
    client: httpx.AsyncClient,
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, "https://shop.bücher.example/", code="idn")

    blocked = await block(client, admin, "BÜCHER.example")

    assert blocked.json()["domain"] == "xn--bcher-kva.example"
    assert_problem(await client.get("/idn"), 410)


@pytest.mark.parametrize(
    "domain", ["", "   ", "https://", "exa mple.com", "a..b", "user@example.com", "x" * 300]
)
async def test_an_invalid_domain_is_a_422_naming_domain(
    client: httpx.AsyncClient, domain: str
) -> None:
    admin, _ = await admin_and_user(client)

    assert_problem(await block(client, admin, domain), 422, fields=["domain"])
    assert_problem(
        await client.post("/api/admin/blocked-domains", json={}, headers=admin.headers),
        422,
        fields=["domain"],
    )
    listed = await client.get("/api/admin/blocked-domains", headers=admin.headers)
    assert listed.json() == {"items": []}


async def test_the_admin_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    documented = {(method.upper(), path) for path in paths for method in paths[path]}
    assert documented >= {
        ("GET", "/api/admin/links"),
        ("PATCH", "/api/admin/links/{code}"),
        ("GET", "/api/admin/blocked-domains"),
        ("POST", "/api/admin/blocked-domains"),
        ("DELETE", "/api/admin/blocked-domains/{domain}"),
        ("GET", "/api/stats/orphans"),
    }
    parameters = paths["/api/admin/links"]["get"]["parameters"]
    assert {parameter["name"] for parameter in parameters} >= {"q", "page", "per_page"}


async def test_the_express_lane_answers_a_disabled_or_blocked_link_410_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    admin, user = await admin_and_user(client)
    await shorten(client, user, code="fast")
    await shorten(client, user, "https://blocked.example/", code="fastblock")
    for code in ("fast", "fastblock"):
        status, _ = head_of(await answered(client, f"/{code}"))
        assert status == "HTTP/1.1 302 Found"  # and cached

    await disable(client, admin, "fast", reason="Spam")
    assert (await block(client, admin, "blocked.example")).status_code == 201

    for code, said in (("fast", "Spam"), ("fastblock", "blocked.example")):
        response = await answered(client, f"/{code}")
        status, headers = head_of(response)
        assert status == "HTTP/1.1 410 Gone"
        assert headers["content-type"] == "application/problem+json"
        assert said in json.loads(response.body)["detail"]
