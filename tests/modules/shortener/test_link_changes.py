"""Changing a link (PATCH), its title and tags, and finding links by them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.modules.shortener.helpers import ShortenerDb
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem

UPDATED = "shortener.link_updated.v1"


async def change(
    client: httpx.AsyncClient, account: Account, code: str, **fields: Any
) -> dict[str, Any]:
    response = await client.patch(f"/api/links/{code}", json=fields, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_link_is_created_with_a_title_and_tags_trimmed_and_kept_once(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)

    body = await shorten(
        client, ana, title="  Spring sale ", tags=["promo", " Promo", "2026", "PROMO "]
    )

    assert (body["title"], body["tags"]) == ("Spring sale", ["promo", "2026"])
    shown = await client.get(f"/api/links/{body['code']}", headers=ana.headers)
    assert shown.json() == body


async def test_a_changed_target_is_followed_at_once_and_published_with_a_new_version(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, "https://example.com/typo", code="printed", title="Flyer")
    assert (await client.get("/printed")).headers["location"] == "https://example.com/typo"

    body = await change(client, ana, "printed", url="https://example.com/right")

    assert body == {**link, "url": "https://example.com/right", "click_count": 1}
    assert (await client.get("/printed")).headers["location"] == "https://example.com/right"
    [event] = await ShortenerDb(database_urls).outbox(UPDATED)
    assert event["payload"]["version"] == 2
    assert event["payload"]["target_url"] == "https://example.com/right"
    assert event["payload"]["title"] == "Flyer"
    await change(client, ana, "printed", title="Flyer, v2")
    versions = [
        row["payload"]["version"] for row in await ShortenerDb(database_urls).outbox(UPDATED)
    ]
    assert sorted(versions) == [2, 3]


async def test_null_clears_an_optional_field_and_absent_fields_stay(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    later = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    await shorten(client, ana, code="clearme", title="T", tags=["a"], expires_at=later.isoformat())

    body = await change(client, ana, "clearme", title=None, tags=None, expires_at=None)

    assert (body["title"], body["tags"], body["expires_at"]) == (None, [], None)
    assert body["url"] == "https://example.com/"


async def test_an_expired_link_revives_when_a_change_removes_its_expiry(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    later = datetime.now(UTC) + timedelta(days=1)
    await shorten(client, ana, code="lapsed", expires_at=later.isoformat())
    await ShortenerDb(database_urls).execute(
        "UPDATE urls SET expires_at = now() - interval '1 minute' WHERE code = 'lapsed'"
    )
    assert_problem(await client.get("/lapsed"), 410)  # and cached as such

    await change(client, ana, "lapsed", expires_at=None)

    assert (await client.get("/lapsed")).status_code == 302


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": None}, "url"),
        ({"title": "x" * 201}, "title"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": ["  "]}, "tags"),
        ({"tags": [f"t{n}" for n in range(21)]}, "tags"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"code": "another"}, "code"),
    ],
)
async def test_a_bad_change_is_a_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    fields: dict[str, Any],
    named: str,
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, code="stable", title="Kept")

    response = await client.patch("/api/links/stable", json=fields, headers=ana.headers)

    assert_problem(response, 422, fields=[named])
    assert (await client.get("/api/links/stable", headers=ana.headers)).json() == link
    assert await ShortenerDb(database_urls).outbox(UPDATED) == []


async def test_only_the_owner_changes_a_link_and_a_deleted_one_cannot_be_changed(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, code="anas")
    await shorten(client, ana, code="gone")
    assert (await client.delete("/api/links/gone", headers=ana.headers)).status_code == 204

    assert_problem(
        await client.patch("/api/links/anas", json={"title": "mine"}, headers=bo.headers), 404
    )
    assert_problem(
        await client.patch("/api/links/gone", json={"title": "back"}, headers=ana.headers), 404
    )
    assert_problem(await client.patch("/api/links/anas", json={"title": "no token"}), 401)
    assert (await client.get("/api/links/anas", headers=ana.headers)).json()["title"] is None


async def test_links_are_found_by_tag_in_any_case_and_by_words(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, "https://shop.example/a", code="sale1", tags=["Promo"])
    await shorten(client, ana, "https://blog.example/b", code="post1", title="Release notes")
    await shorten(client, ana, "https://shop.example/c", code="sale2", tags=["promo", "x"])
    await shorten(client, bo, "https://shop.example/d", code="bosale", tags=["promo"])

    async def codes(**query: str) -> list[str]:
        response = await client.get("/api/links", params=query, headers=ana.headers)
        assert response.status_code == 200, response.text
        return [item["code"] for item in response.json()["items"]]

    assert await codes(tag="PROMO") == ["sale2", "sale1"]
    assert await codes(q="release") == ["post1"]  # the title
    assert await codes(q="shop.example") == ["sale2", "sale1"]  # the target
    assert await codes(q="ost") == ["post1"]  # the code
    assert await codes(q="%") == []  # a wildcard is a plain character
    assert await codes(tag="promo", q="/c") == ["sale2"]
    assert await codes(sort="created_at") == ["sale1", "post1", "sale2"]


async def test_links_sort_by_click_count_either_way(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    for code, clicks in (("few", 1), ("many", 3), ("none", 0)):
        await shorten(client, ana, code=code)
        for _ in range(clicks):
            assert (await client.get(f"/{code}")).status_code == 302

    async def codes(sort: str) -> list[str]:
        response = await client.get("/api/links", params={"sort": sort}, headers=ana.headers)
        return [item["code"] for item in response.json()["items"]]

    assert await codes("-click_count") == ["many", "few", "none"]
    assert await codes("click_count") == ["none", "few", "many"]


async def test_a_bad_list_query_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    for query, named in (({"sort": "title"}, "sort"), ({"tag": "x" * 51}, "tag")):
        response = await client.get("/api/links", params=query, headers=ana.headers)
        assert_problem(response, 422, fields=[named])


async def test_tags_are_listed_with_their_live_links_most_used_first(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await shorten(client, ana, code="one", tags=["promo", "news"])
    await shorten(client, ana, code="two", tags=["Promo"])
    await shorten(client, ana, code="three", tags=["promo", "old"])
    await shorten(client, bo, code="bos", tags=["news", "bo"])
    assert (await client.delete("/api/links/three", headers=ana.headers)).status_code == 204

    response = await client.get("/api/tags", headers=ana.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"items": [{"tag": "Promo", "links": 2}, {"tag": "news", "links": 1}]}
    assert_problem(await client.get("/api/tags"), 401)


async def test_before_valid_from_a_link_answers_like_an_unknown_code(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    link = await shorten(client, ana, code="launch", valid_from=tomorrow.isoformat())
    unknown = await client.get("/never-made")

    early = await client.get("/launch")

    assert_problem(early, 404)
    assert early.json()["type"] == unknown.json()["type"]
    assert datetime.fromisoformat(link["valid_from"]) == tomorrow
    # The moment comes (moved here rather than waited for): it redirects, cache or not.
    await change(client, ana, "launch", valid_from=None)
    assert (await client.get("/launch")).status_code == 302
    await ShortenerDb(database_urls).execute(
        "UPDATE urls SET valid_from = now() + interval '1 day' WHERE code = 'launch'"
    )
    await change(client, ana, "launch", title="evicts the cached link")
    assert_problem(await client.get("/launch"), 404)


async def test_a_window_that_closes_before_it_opens_is_a_422_naming_valid_from(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    soon = datetime.now(UTC) + timedelta(days=1)
    later = soon + timedelta(days=1)

    created = await client.post(
        "/api/links",
        json={
            "url": "https://example.com/",
            "valid_from": later.isoformat(),
            "expires_at": soon.isoformat(),
        },
        headers=ana.headers,
    )
    assert_problem(created, 422, fields=["valid_from"])

    await shorten(client, ana, code="window", expires_at=soon.isoformat())
    changed = await client.patch(
        "/api/links/window", json={"valid_from": later.isoformat()}, headers=ana.headers
    )
    assert_problem(changed, 422, fields=["valid_from"])
    assert (await client.get("/window")).status_code == 302


@pytest.mark.parametrize(
    ("target", "visit", "expected"),
    [
        ("https://example.com/p", "/fwd?utm_source=mail", "https://example.com/p?utm_source=mail"),
        ("https://example.com/p?a=1", "/fwd?b=2&c=3", "https://example.com/p?a=1&b=2&c=3"),
        ("https://example.com/p#top", "/fwd?b=2", "https://example.com/p?b=2#top"),
        ("https://example.com/p?a=1", "/fwd", "https://example.com/p?a=1"),
        ("https://example.com/p", "/fwd?q=%C3%A9%20x", "https://example.com/p?q=%C3%A9%20x"),
    ],
)
async def test_a_link_that_forwards_the_query_appends_the_visits_query_to_its_target(
    client: httpx.AsyncClient, target: str, visit: str, expected: str
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, target, code="fwd", forward_query=True)
    await shorten(client, ana, target, code="plain")

    for _ in range(2):  # looked up, then cached
        response = await client.get(visit)
        assert response.status_code == 302
        assert response.headers["location"] == expected
    plain = await client.get(visit.replace("/fwd", "/plain"))
    assert plain.headers["location"] == target


async def test_forward_query_is_turned_on_and_off_by_a_change(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    await shorten(client, ana, "https://example.com/", code="toggle")

    assert (await change(client, ana, "toggle", forward_query=True))["forward_query"] is True
    assert (await client.get("/toggle?x=1")).headers["location"] == "https://example.com/?x=1"
    assert (await change(client, ana, "toggle", forward_query=None))["forward_query"] is False
    assert (await client.get("/toggle?x=1")).headers["location"] == "https://example.com/"


async def test_a_nul_character_is_a_422_naming_its_field_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="nul")

    for fields, named in (({"title": "a\x00b"}, "title"), ({"tags": ["a\x00"]}, "tags.0")):
        response = await client.patch("/api/links/nul", json=fields, headers=ana.headers)
        assert_problem(response, 422, fields=[named])
    for query in ("q", "tag"):
        response = await client.get("/api/links", params={query: "a\x00"}, headers=ana.headers)
        assert_problem(response, 422, fields=[query])


async def test_tags_and_words_compare_case_insensitively_beyond_ascii(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, code="upper", tags=["CAFÉ"], title="Émile")
    await shorten(client, ana, code="lower", tags=["café", "Straße"])

    async def codes(**query: str) -> list[str]:
        response = await client.get("/api/links", params=query, headers=ana.headers)
        return sorted(item["code"] for item in response.json()["items"])

    assert await codes(tag="Café") == ["lower", "upper"]
    assert await codes(tag="STRASSE") == ["lower"]  # casefold: ß is ss
    assert await codes(q="émile") == ["upper"]
    tags = (await client.get("/api/tags", headers=ana.headers)).json()["items"]
    assert [(tag["tag"].casefold(), tag["links"]) for tag in tags] == [
        ("café", 2),
        ("strasse", 1),
    ]


async def test_a_changed_title_or_target_is_what_a_search_finds(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, "https://old.example/", code="moving", title="Before")
    await change(client, ana, "moving", title="Après", tags=["Neu"])
    await change(client, ana, "moving", url="https://new.example/")

    async def codes(**query: str) -> list[str]:
        response = await client.get("/api/links", params=query, headers=ana.headers)
        return [item["code"] for item in response.json()["items"]]

    assert await codes(q="APRÈS") == await codes(q="new.example") == ["moving"]
    assert await codes(tag="neu") == ["moving"]
    assert await codes(q="before") == await codes(q="old.example") == []


async def test_moving_the_expiry_before_the_start_is_a_422_naming_expires_at(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    start = datetime.now(UTC) + timedelta(days=2)
    await shorten(client, ana, code="windowed", valid_from=start.isoformat())

    response = await client.patch(
        "/api/links/windowed",
        json={"expires_at": (start - timedelta(days=1)).isoformat()},
        headers=ana.headers,
    )

    assert_problem(response, 422, fields=["expires_at"])
