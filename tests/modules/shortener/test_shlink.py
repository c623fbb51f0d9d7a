"""The Shlink REST API v3's short URLs, tags and orphan visits over HTTP with real
PostgreSQL: Shlink's shapes and problem details, paging, auth and scopes, owner isolation,
and hostile input refused as the links API refuses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.kernel.shlink import MAX_ITEMS_PER_PAGE
from tests.conftest import AppFactory
from tests.modules.shortener.test_orphans import tally_of
from tests.modules.shortener.test_yourls import key_of

API = "/rest/v3"
ERROR = "https://shlink.io/api/error/"
SHORT_URL_KEYS = {
    "shortCode",
    "shortUrl",
    "longUrl",
    "deviceLongUrls",
    "dateCreated",
    "tags",
    "meta",
    "domain",
    "title",
    "crawlable",
    "forwardQuery",
    "visitsSummary",
    "hasRedirectRules",
}
ALL = ["links:read", "links:write", "stats:read"]


def shlink_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """Shlink's problem details: its `type`, a title, a detail, the status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == ERROR + error, body
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


def invalid(response: httpx.Response, *elements: str) -> dict[str, Any]:
    body = shlink_error(response, 400, "invalid-data")
    assert body["invalidElements"] == sorted(elements), body
    return body


async def create(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    made = await client.post(f"{API}/short-urls", json=fields, headers={"X-Api-Key": key})
    assert made.status_code == 200, made.text
    body: dict[str, Any] = made.json()
    return body


def codes(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["shortCode"] for item in response.json()["shortUrls"]["data"]]


async def test_create_then_get_answer_shlinks_short_url(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)

    made = await create(
        client,
        key,
        longUrl="https://example.com/a",
        customSlug="ana",
        title="A",
        tags=["x", "y"],
        validSince="2024-01-01T00:00:00+00:00",
        validUntil=until.isoformat(),
        maxVisits=5,
        forwardQuery=False,
    )

    assert set(made) == SHORT_URL_KEYS
    assert made["shortCode"] == "ana" and made["shortUrl"] == "http://encurta.test/ana"
    assert made["meta"] == {
        "validSince": "2024-01-01T00:00:00+00:00",
        "validUntil": until.isoformat(),
        "maxVisits": 5,
    }
    assert made["tags"] == ["x", "y"] and made["title"] == "A" and made["domain"] is None
    assert made["forwardQuery"] is False and made["crawlable"] is False
    assert made["visitsSummary"] == {"total": 0, "nonBots": 0, "bots": 0}
    assert datetime.fromisoformat(made["dateCreated"]).tzinfo is not None
    got = await client.get(f"{API}/short-urls/ana", headers={"X-Api-Key": key})
    assert got.status_code == 200 and got.json() == made
    # Shlink forwards the query unless told not to.
    assert (await create(client, key, longUrl="https://example.com/b"))["forwardQuery"] is True


async def test_find_if_exists_returns_the_same_link_else_makes_one(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    first = await create(client, key, longUrl="https://example.com/a", tags=["t"])

    again = await create(client, key, longUrl="https://example.com/a", findIfExists=True)
    other_tags = await create(
        client, key, longUrl="https://example.com/a", tags=["u"], findIfExists=True
    )

    assert again["shortCode"] == first["shortCode"]
    assert other_tags["shortCode"] != first["shortCode"]
    # Another owner's link to the same URL is never found.
    bob = await key_of(client, "bob@example.com", ALL)
    theirs = await create(client, bob, longUrl="https://example.com/a", findIfExists=True)
    assert theirs["shortCode"] not in (first["shortCode"], other_tags["shortCode"])


async def test_list_pages_orders_searches_and_filters_by_tags(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    await create(client, key, longUrl="https://example.com/1", customSlug="bbb", tags=["a"])
    await create(client, key, longUrl="https://example.com/2", customSlug="aaa", tags=["a", "b"])
    await create(client, key, longUrl="https://example.com/3", customSlug="ccc", title="Cats")
    headers = {"X-Api-Key": key}

    page = await client.get(
        f"{API}/short-urls", params={"itemsPerPage": 2, "page": 2}, headers=headers
    )
    assert codes(page) == ["bbb"]  # newest first: ccc, aaa | bbb
    assert page.json()["shortUrls"]["pagination"] == {
        "currentPage": 2,
        "pagesCount": 2,
        "itemsPerPage": 2,
        "itemsInCurrentPage": 1,
        "totalItems": 3,
    }
    listed = f"{API}/short-urls"
    ordered = await client.get(listed, params={"orderBy": "shortCode-ASC"}, headers=headers)
    assert codes(ordered) == ["aaa", "bbb", "ccc"]
    backwards = await client.get(listed, params={"orderBy": "shortCode-DESC"}, headers=headers)
    assert codes(backwards) == ["ccc", "bbb", "aaa"]
    assert codes(await client.get(listed, params={"searchTerm": "CAT"}, headers=headers)) == ["ccc"]
    any_tag = await client.get(
        listed, params=[("tags[]", "a"), ("tags[]", "b"), ("orderBy", "shortCode")], headers=headers
    )
    assert codes(any_tag) == ["aaa", "bbb"]
    all_tags = await client.get(
        listed, params=[("tags[]", "A"), ("tags[]", "b"), ("tagsMode", "all")], headers=headers
    )
    assert codes(all_tags) == ["aaa"]
    huge = await client.get(listed, params={"itemsPerPage": 10**9}, headers=headers)
    assert huge.json()["shortUrls"]["pagination"]["itemsPerPage"] == MAX_ITEMS_PER_PAGE
    every = await client.get(listed, params={"itemsPerPage": -1}, headers=headers)
    assert len(codes(every)) == 3
    invalid(await client.get(listed, params={"orderBy": "owner-ASC"}, headers=headers), "orderBy")
    invalid(await client.get(listed, params={"page": "x"}, headers=headers), "page")
    invalid(await client.get(listed, params={"tagsMode": "some"}, headers=headers), "tagsMode")
    invalid(
        await client.get(listed, params={"startDate": "2024-01-01"}, headers=headers), "startDate"
    )


async def test_edit_changes_only_the_fields_sent_and_null_clears(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    headers = {"X-Api-Key": key}
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    await create(
        client, key, longUrl="https://example.com/a", customSlug="ana", title="A", validUntil=until
    )

    edited = await client.patch(
        f"{API}/short-urls/ana",
        json={"longUrl": "https://example.com/new", "validUntil": None, "tags": ["t"]},
        headers=headers,
    )

    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["longUrl"] == "https://example.com/new" and body["title"] == "A"
    assert body["meta"]["validUntil"] is None and body["tags"] == ["t"]
    mine = await client.get("/api/links/ana", headers=headers)
    assert mine.json()["url"] == "https://example.com/new" and mine.json()["expires_at"] is None
    refused = await client.patch(
        f"{API}/short-urls/ana", json={"longUrl": "javascript:alert(1)"}, headers=headers
    )
    invalid(refused, "longUrl")
    missing = await client.patch(f"{API}/short-urls/nope", json={"title": "x"}, headers=headers)
    assert shlink_error(missing, 404, "short-url-not-found")["shortCode"] == "nope"


async def test_delete_then_the_link_is_gone_everywhere(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    headers = {"X-Api-Key": key}
    await create(client, key, longUrl="https://example.com/a", customSlug="ana")

    deleted = await client.delete(f"{API}/short-urls/ana", headers=headers)

    assert deleted.status_code == 204
    shlink_error(
        await client.get(f"{API}/short-urls/ana", headers=headers), 404, "short-url-not-found"
    )
    shlink_error(
        await client.delete(f"{API}/short-urls/ana", headers=headers), 404, "short-url-not-found"
    )
    assert (await client.get("/ana")).status_code == 410


async def test_a_taken_slug_is_shlinks_non_unique_slug(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    await create(client, key, longUrl="https://example.com/a", customSlug="ana")

    taken = await client.post(
        f"{API}/short-urls",
        json={"longUrl": "https://example.com/b", "customSlug": "ana"},
        headers={"X-Api-Key": key},
    )

    body = shlink_error(taken, 400, "non-unique-slug")
    assert (
        body["customSlug"] == "ana" and body["detail"] == 'Provided slug "ana" is already in use.'
    )


async def test_keys_are_checked_and_scopes_enforced(client: httpx.AsyncClient) -> None:
    reader = await key_of(client, "ana@example.com", ["links:read"])
    listed = f"{API}/short-urls"

    missing = shlink_error(await client.get(listed), 401, "missing-authentication")
    assert missing["expectedHeaders"] == ["X-Api-Key"]
    shlink_error(
        await client.get(listed, headers={"X-Api-Key": "enc_nope"}), 401, "invalid-api-key"
    )
    # A bearer token is not Shlink's authentication.
    token = (
        await client.post(
            "/api/auth/login",
            json={"email": "ana@example.com", "password": "a long and unusual passphrase"},
        )
    ).json()["access_token"]
    shlink_error(
        await client.get(listed, headers={"Authorization": f"Bearer {token}"}),
        401,
        "missing-authentication",
    )
    assert (await client.get(listed, headers={"X-Api-Key": reader})).status_code == 200
    refused = await client.post(
        listed, json={"longUrl": "https://example.com/"}, headers={"X-Api-Key": reader}
    )
    assert "links:write" in shlink_error(refused, 403, "forbidden-operation")["detail"]
    orphans = await client.get(f"{API}/visits/orphan", headers={"X-Api-Key": reader})
    shlink_error(orphans, 403, "forbidden-operation")
    health = await client.get("/rest/health")
    assert health.status_code == 200 and health.json()["status"] == "pass"
    assert (await client.get(f"{API}/health")).json()["status"] == "pass"


async def test_another_owners_key_never_sees_your_links(client: httpx.AsyncClient) -> None:
    ana = await key_of(client, "ana@example.com", ALL)
    bob = {"X-Api-Key": await key_of(client, "bob@example.com", ALL)}
    await create(client, ana, longUrl="https://example.com/a", customSlug="ana", tags=["secret"])

    assert codes(await client.get(f"{API}/short-urls", headers=bob)) == []
    assert (await client.get(f"{API}/tags", headers=bob)).json() == {"tags": {"data": []}}
    for method in ("GET", "DELETE"):
        answer = await client.request(method, f"{API}/short-urls/ana", headers=bob)
        shlink_error(answer, 404, "short-url-not-found")
    edited = await client.patch(f"{API}/short-urls/ana", json={"title": "mine"}, headers=bob)
    shlink_error(edited, 404, "short-url-not-found")
    still = await client.get(f"{API}/short-urls/ana", headers={"X-Api-Key": ana})
    assert still.json()["title"] is None


@pytest.mark.parametrize(
    ("fields", "elements"),
    [
        ({"longUrl": "javascript:alert(1)"}, ["longUrl"]),
        ({"longUrl": "http://127.0.0.1/admin"}, ["longUrl"]),
        ({"longUrl": "https://example.com/\x00"}, ["longUrl"]),
        ({"longUrl": "https://example.com/", "title": "a\x00b"}, ["title"]),
        ({"longUrl": "https://example.com/", "customSlug": "a/b"}, ["customSlug"]),
        ({"longUrl": "https://example.com/", "customSlug": "api"}, ["customSlug"]),
        ({"longUrl": "https://example.com/", "maxVisits": 0}, ["maxVisits"]),
        ({"longUrl": "https://example.com/", "validUntil": "2001-01-01T00:00:00Z"}, ["validUntil"]),
        ({"longUrl": "https://example.com/", "validSince": "yesterday"}, ["validSince"]),
        ({"longUrl": "https://example.com/", "domain": "s.example"}, ["domain"]),
        ({"longUrl": "https://example.com/", "crawlable": True}, ["crawlable"]),
        (
            {"longUrl": "https://example.com/", "deviceLongUrls": {"ios": "https://a.example/"}},
            ["deviceLongUrls"],
        ),
        ({"longUrl": "https://example.com/", "tags": ["x" * 51]}, ["tags"]),
        ({}, ["longUrl"]),
    ],
)
async def test_hostile_or_unsupported_input_is_invalid_data_and_stores_nothing(
    client: httpx.AsyncClient, fields: dict[str, Any], elements: list[str]
) -> None:
    key = await key_of(client, "ana@example.com", ALL)

    answer = await client.post(f"{API}/short-urls", json=fields, headers={"X-Api-Key": key})

    body = invalid(answer, *elements)
    assert all(body["reasons"][element] for element in elements)
    assert codes(await client.get(f"{API}/short-urls", headers={"X-Api-Key": key})) == []


async def test_hostile_queries_are_refused_not_failed(client: httpx.AsyncClient) -> None:
    headers = {"X-Api-Key": await key_of(client, "ana@example.com", ALL)}
    listed = f"{API}/short-urls"

    invalid(await client.get(listed, params={"searchTerm": "a\x00"}, headers=headers), "searchTerm")
    invalid(await client.get(listed, params={"tags[]": "a\x00"}, headers=headers), "tags")
    invalid(
        await client.get(listed, params={"searchTerm": "a" * 201}, headers=headers), "searchTerm"
    )
    invalid(await client.get(listed, params={"page": 10**12}, headers=headers), "page")
    not_json = await client.post(
        listed, content=b"{", headers={**headers, "Content-Type": "application/json"}
    )
    shlink_error(not_json, 400, "invalid-data")
    odd = await client.get(f"{API}/short-urls/a%00b", headers=headers)
    shlink_error(odd, 404, "short-url-not-found")
    foreign = await client.get(
        f"{API}/short-urls/abc", params={"domain": "s.example"}, headers=headers
    )
    assert shlink_error(foreign, 404, "short-url-not-found")["domain"] == "s.example"


async def test_a_short_urls_visits_are_analytics_through_a_redirect(
    client: httpx.AsyncClient,
) -> None:
    headers = {"X-Api-Key": await key_of(client, "ana@example.com", ALL)}
    bob = {"X-Api-Key": await key_of(client, "bob@example.com", ALL)}
    reader = {"X-Api-Key": await key_of(client, "cy@example.com", ["links:read"])}
    await create(client, headers["X-Api-Key"], longUrl="https://example.com/", customSlug="abc")
    path = f"{API}/short-urls/abc/visits"

    moved = await client.get(path, params={"page": 2, "excludeBots": "true"}, headers=headers)

    assert moved.status_code == 307
    assert moved.headers["location"] == f"{API}/visits/short-urls/abc?page=2&excludeBots=true"
    # A code that is no link of the caller's is Shlink's 404 here, before any redirect.
    shlink_error(await client.get(path, headers=bob), 404, "short-url-not-found")
    unknown = await client.get(f"{API}/short-urls/nope/visits", headers=headers)
    shlink_error(unknown, 404, "short-url-not-found")
    shlink_error(await client.get(path, headers=reader), 403, "forbidden-operation")
    shlink_error(await client.get(path), 401, "missing-authentication")


async def test_tags_and_their_stats(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ALL)
    await create(client, key, longUrl="https://example.com/1", customSlug="one", tags=["Go", "x"])
    await create(client, key, longUrl="https://example.com/2", tags=["go"])
    assert (
        await client.get("/one", headers={"User-Agent": "Mozilla/5.0 Chrome/120"})
    ).status_code == 302
    headers = {"X-Api-Key": key}

    tags = await client.get(f"{API}/tags", headers=headers)
    stats = await client.get(f"{API}/tags/stats", headers=headers)

    assert tags.json() == {"tags": {"data": ["Go", "x"]}}
    data = {item["tag"]: item for item in stats.json()["tags"]["data"]}
    assert data["Go"]["shortUrlsCount"] == 2 and data["x"]["shortUrlsCount"] == 1
    assert set(data["Go"]["visitsSummary"]) == {"total", "nonBots", "bots"}
    assert stats.json()["tags"]["pagination"]["totalItems"] == 2


async def test_orphan_visits_are_an_admin_keys_only(app_client: AppFactory) -> None:
    async with app_client() as client:
        admin = await key_of(client, "admin@example.com", [*ALL, "admin"])
        user = await key_of(client, "user@example.com", ALL)
        for _ in range(3):
            assert (await client.get("/nosuch")).status_code == 404
        await tally_of(client).flush()

        shown = await client.get(f"{API}/visits/orphan", headers={"X-Api-Key": admin})
        hidden = await client.get(f"{API}/visits/orphan", headers={"X-Api-Key": user})

    assert shown.status_code == 200, shown.text
    (row,) = shown.json()["visits"]["data"]
    assert row["visitedUrl"] == "http://encurta.test/nosuch" and row["visits"] == 3
    assert row["type"] == "invalid_short_url" and row["visitLocation"] is None
    assert shown.json()["visits"]["pagination"]["totalItems"] == 1
    assert hidden.json()["visits"] == {
        "data": [],
        "pagination": {
            "currentPage": 1,
            "pagesCount": 0,
            "itemsPerPage": 20,
            "itemsInCurrentPage": 0,
            "totalItems": 0,
        },
    }


async def test_a_page_of_another_origin_may_call_it_as_shlinks_web_client_does(
    client: httpx.AsyncClient,
) -> None:
    """Shlink's web client runs in a browser on its own origin: the preflight must pass and
    the answers be readable there. Only the key authenticates, so any origin may ask."""
    key = await key_of(client, "ana@example.com", ALL)
    page = {"Origin": "https://app.shlink.io"}

    preflight = await client.options(
        f"{API}/short-urls",
        headers={
            **page,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )
    made = await client.post(
        f"{API}/short-urls",
        json={"longUrl": "https://example.com/c"},
        headers={**page, "X-Api-Key": key},
    )
    refused = await client.get(f"{API}/short-urls", headers=page)
    analytics = await client.options(f"{API}/visits", headers=page)
    same_site = await client.get(f"{API}/short-urls", headers={"X-Api-Key": key})

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    assert "X-Api-Key" in preflight.headers["access-control-allow-headers"]
    assert made.status_code == 200 and made.headers["access-control-allow-origin"] == "*"
    shlink_error(refused, 401, "missing-authentication")
    assert refused.headers["access-control-allow-origin"] == "*"  # the page may read why
    assert analytics.status_code == 204
    assert "access-control-allow-origin" not in same_site.headers
