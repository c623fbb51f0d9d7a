"""The links API: create, list, show and delete, against the real database."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.config import Settings
from tests.conftest import AppFactory
from tests.modules.shortener.helpers import CREATED, DELETED, ShortenerDb
from tests.support.accounts import bearer, new_account, shorten
from tests.support.problems import assert_problem

BASE62 = re.compile(r"[A-Za-z0-9]{8}")
LINK_FIELDS = {
    "code",
    "short_url",
    "url",
    "created_at",
    "expires_at",
    "title",
    "tags",
    "valid_from",
    "forward_query",
    "max_visits",
    "visits",
    "has_password",  # never the password or its hash
    "redirect_rules",
    "click_count",
    "disabled",
    "disabled_reason",
    "imported_clicks",  # clicks brought by an import, apart from click_count
}


async def test_creating_a_link_answers_201_with_the_link_and_its_location(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    before = datetime.now(UTC)

    response = await client.post(
        "/api/links", json={"url": "https://example.com/some/page?q=1#top"}, headers=ana.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == LINK_FIELDS
    assert BASE62.fullmatch(body["code"])
    assert body["short_url"] == f"http://encurta.test/{body['code']}"
    assert body["url"] == "https://example.com/some/page?q=1#top"
    assert body["expires_at"] is None
    assert body["click_count"] == 0
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.tzinfo is not None
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert response.headers["location"] == f"/api/links/{body['code']}"
    shown = await client.get(response.headers["location"], headers=ana.headers)
    assert shown.status_code == 200
    assert shown.json() == body


async def test_generated_codes_are_eight_base62_characters_and_differ(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)

    codes = [(await shorten(client, ana, f"https://example.com/{i}"))["code"] for i in range(10)]

    assert all(BASE62.fullmatch(code) for code in codes), codes
    assert len(set(codes)) == len(codes)


async def test_the_target_is_stored_normalised(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    body = await shorten(client, ana, "HTTPS://Example.COM:443/Caf\u00e9")

    assert body["url"] == "https://example.com/Caf%C3%A9"


async def test_a_custom_code_is_used_as_given(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    body = await shorten(client, ana, code="My_Launch-2025")

    assert body["code"] == "My_Launch-2025"
    assert body["short_url"] == "http://encurta.test/My_Launch-2025"
    assert (await client.get("/My_Launch-2025")).status_code == 302


async def test_a_taken_custom_code_is_a_409_and_stores_nothing(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, "https://example.com/first", code="launch")

    response = await client.post(
        "/api/links",
        json={"url": "https://example.com/second", "code": "launch"},
        headers=bo.headers,
    )

    body = assert_problem(response, 409)
    assert "launch" in body["detail"]
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 1
    assert [row["payload"]["target_url"] for row in await db.outbox(CREATED)] == [
        "https://example.com/first"
    ]
    assert (await client.get("/launch")).headers["location"] == "https://example.com/first"


async def test_a_deleted_links_code_is_never_handed_out_again(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="seasonal")
    assert (await client.delete("/api/links/seasonal", headers=ana.headers)).status_code == 204

    again = await client.post(
        "/api/links",
        json={"url": "https://example.com/new", "code": "seasonal"},
        headers=ana.headers,
    )

    assert_problem(again, 409)
    assert (await client.get("/seasonal")).status_code == 410


@pytest.mark.parametrize(
    "code",
    [
        "api",
        "API",
        "healthz",
        "openapi.json",
        ".well-known",
        "docs",
        "static",
        "ab",
        "a" * 65,
        "a b",
        "\u00fcber",
        "caf\u00e9",
        "no/slash",
        "semi;colon",
        "",
    ],
    ids=[
        "api",
        "API-uppercase",
        "healthz",
        "openapi.json",
        ".well-known",
        "docs",
        "static",
        "too-short",
        "65-chars",
        "space",
        "u-umlaut",
        "accent",
        "slash",
        "semicolon",
        "empty",
    ],
)
async def test_an_invalid_or_reserved_custom_code_is_a_422_naming_code(
    client: httpx.AsyncClient, database_urls: dict[str, str], code: str
) -> None:
    ana = await new_account(client)

    response = await client.post(
        "/api/links", json={"url": "https://example.com/", "code": code}, headers=ana.headers
    )

    assert_problem(response, 422, fields=["code"])
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 0
    assert await db.outbox() == []


async def test_a_64_character_code_is_the_longest_accepted(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    assert (await shorten(client, ana, code="x" * 64))["code"] == "x" * 64
    assert (await shorten(client, ana, code="abc"))["code"] == "abc"


async def test_an_expiry_in_the_future_is_stored_and_shown(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    expires = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)

    body = await shorten(client, ana, expires_at=expires.astimezone().isoformat())

    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert (await client.get(f"/{body['code']}")).status_code == 302


@pytest.mark.parametrize(
    "expires_at",
    [
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "2001-01-01T00:00:00+00:00",
        (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat(),
        "tomorrow",
        # Valid ISO 8601 and in the future, but not representable once moved to UTC.
        "9999-12-31T23:59:59-14:00",
    ],
    ids=["a-minute-ago", "long-ago", "no-time-zone", "not-a-date", "beyond-year-9999-in-utc"],
)
async def test_a_bad_expiry_is_a_422_naming_expires_at(
    client: httpx.AsyncClient, database_urls: dict[str, str], expires_at: str
) -> None:
    ana = await new_account(client)

    response = await client.post(
        "/api/links",
        json={"url": "https://example.com/", "expires_at": expires_at},
        headers=ana.headers,
    )

    assert_problem(response, 422, fields=["expires_at"])
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 0
    assert await db.outbox() == []


async def test_creating_without_a_token_is_a_401_by_default(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    response = await client.post("/api/links", json={"url": "https://example.com/"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 0
    assert await db.outbox() == []


async def test_anonymous_creation_works_when_allowed_but_a_bad_token_is_still_a_401(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    anonymous = settings.shortener.model_copy(update={"allow_anonymous": True})
    async with app_client(shortener=anonymous) as client:
        body = await shorten(client, None, "https://example.com/anon")
        bad = await client.post(
            "/api/links", json={"url": "https://example.com/x"}, headers=bearer("not.a.token")
        )
        followed = await client.get(f"/{body['code']}")
        listed = await client.get("/api/links")

    assert body["url"] == "https://example.com/anon"
    assert followed.status_code == 302
    assert_problem(bad, 401)
    assert_problem(listed, 401)  # listing still needs an owner
    [event] = await ShortenerDb(database_urls).outbox(CREATED)
    assert event["payload"]["owner_id"] is None


async def test_creating_a_link_writes_exactly_one_link_created_outbox_row(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)

    body = await shorten(client, ana, "https://example.com/evt", code="evt")

    db = ShortenerDb(database_urls)
    [row] = await db.outbox()
    assert row["type"] == CREATED
    assert row["key"] == "evt"
    payload = row["payload"]
    assert payload["code"] == "evt"
    assert payload["target_url"] == body["url"]
    assert payload["owner_id"] == str(ana.id)
    assert payload["expires_at"] is None
    [url] = await db.fetch("SELECT id, created_at FROM urls WHERE code = 'evt'")
    assert payload["link_id"] == str(url["id"])
    assert datetime.fromisoformat(payload["created_at"]) == url["created_at"]
    assert uuid.UUID(payload["event_id"]) == row["event_id"]


async def test_listing_pages_the_callers_live_links_newest_first(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    codes = [(await shorten(client, ana, code=f"ana-{i}"))["code"] for i in range(5)]
    await shorten(client, bo, code="bo-only")
    await shorten(client, ana, code="ana-gone")
    assert (await client.delete("/api/links/ana-gone", headers=ana.headers)).status_code == 204
    newest_first = list(reversed(codes))

    pages = []
    for page in (1, 2, 3, 4):
        response = await client.get(
            "/api/links", params={"page": page, "per_page": 2}, headers=ana.headers
        )
        assert response.status_code == 200, response.text
        pages.append(response.json())

    assert [[item["code"] for item in body["items"]] for body in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
        [],
    ]
    assert {body["total"] for body in pages} == {5}
    assert [(body["page"], body["per_page"]) for body in pages] == [(1, 2), (2, 2), (3, 2), (4, 2)]
    first = pages[0]["items"][0]
    assert set(first) == LINK_FIELDS
    default = (await client.get("/api/links", headers=ana.headers)).json()
    assert (default["page"], default["per_page"], default["total"]) == (1, 20, 5)
    assert [item["code"] for item in default["items"]] == newest_first
    bos = (await client.get("/api/links", headers=bo.headers)).json()
    assert [item["code"] for item in bos["items"]] == ["bo-only"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "101"}, "per_page"),
        ({"page": "abc"}, "page"),
        ({"page": "0"}, "page"),
    ],
    ids=["per_page-0", "per_page-101", "page-abc", "page-0"],
)
async def test_a_bad_page_query_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    ana = await new_account(client)

    response = await client.get("/api/links", params=params, headers=ana.headers)

    assert_problem(response, 422, fields=[field])


async def test_listing_without_a_token_is_a_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/links"), 401)


async def test_showing_a_link_includes_its_click_count(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    body = await shorten(client, ana, code="counted")
    for _ in range(3):
        assert (await client.get("/counted")).status_code == 302

    response = await client.get("/api/links/counted", headers=ana.headers)

    assert response.status_code == 200
    assert response.json() == {**body, "click_count": 3}


async def test_another_users_link_is_404_not_403_to_show_and_to_delete(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, code="anas")

    shown = await client.get("/api/links/anas", headers=bo.headers)
    deleted = await client.delete("/api/links/anas", headers=bo.headers)
    unknown = await client.get("/api/links/nobodys", headers=bo.headers)

    assert_problem(shown, 404)
    assert_problem(deleted, 404)
    # Indistinguishable from a code that does not exist: codes of others do not leak.
    same = ("type", "title", "status")
    assert [shown.json()[key] for key in same] == [unknown.json()[key] for key in same]
    assert (await client.get("/anas")).status_code == 302  # still alive
    assert (await client.get("/api/links/anas", headers=ana.headers)).status_code == 200


async def test_deleting_answers_204_then_the_link_is_gone_everywhere(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="bye")
    assert (await client.get("/bye")).status_code == 302  # now in the redirect cache

    response = await client.delete("/api/links/bye", headers=ana.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get("/bye"), 410)
    assert_problem(await client.get("/api/links/bye", headers=ana.headers), 404)
    assert_problem(await client.delete("/api/links/bye", headers=ana.headers), 404)
    [row] = await ShortenerDb(database_urls).outbox(DELETED)
    assert row["payload"]["code"] == "bye"
    assert row["payload"]["owner_id"] == str(ana.id)


async def test_deleting_without_a_token_is_a_401(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="keep")

    assert_problem(await client.delete("/api/links/keep"), 401)
    assert (await client.get("/keep")).status_code == 302
