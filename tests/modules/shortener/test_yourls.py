"""The YOURLS API (`/yourls-api.php`) over HTTP with real PostgreSQL: each action, each
format, and YOURLS's answers to what goes wrong, field for field."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx

from tests.modules.shortener.helpers import follow
from tests.support.accounts import bearer, login, register
from tests.support.waiting import eventually

API = "/yourls-api.php"
TAKEN = "Short URL {} already exists in database or is reserved"


async def key_of(client: httpx.AsyncClient, email: str, scopes: list[str]) -> str:
    """A new account's API key, once the shortener has heard of it (through its inbox)."""
    await register(client, email)
    session = bearer((await login(client, email))["access_token"])
    made = await client.post(
        "/api/keys", json={"name": "yourls", "scopes": scopes}, headers=session
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    await eventually(
        lambda: client.get("/api/links", headers={"X-Api-Key": key}),
        lambda response: response.status_code in (200, 403),
        what="the key reaches the shortener",
    )
    return key


def xml_of(response: httpx.Response) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314 - the app's own answer, in a test


async def call(client: httpx.AsyncClient, key: str, **params: Any) -> httpx.Response:
    return await client.get(API, params={"signature": key, "format": "json", **params})


async def test_shorturl_then_expand_and_url_stats(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])

    made = await call(
        client, key, action="shorturl", url="https://example.com/a", keyword="ana", title="A"
    )

    assert made.status_code == 200, made.text
    body = made.json()
    assert body["status"] == "success" and body["statusCode"] == "200"
    assert body["code"] == "" and body["errorCode"] == ""
    assert body["message"] == "https://example.com/a added to database"
    assert body["shorturl"] == "http://encurta.test/ana" and body["title"] == "A"
    assert body["url"]["keyword"] == "ana" and body["url"]["url"] == "https://example.com/a"
    assert len(body["url"]["date"]) == len("2026-01-01 00:00:00")
    await follow(client, "ana")

    expanded = await call(client, key, action="expand", shorturl="http://encurta.test/ana")
    assert expanded.status_code == 200
    assert expanded.json() == {
        "keyword": "ana",
        "shorturl": "http://encurta.test/ana",
        "longurl": "https://example.com/a",
        "title": "A",
        "message": "success",
        "statusCode": "200",
    }
    stats = await eventually(
        lambda: call(client, key, action="url-stats", shorturl="ana"),
        lambda response: response.json()["link"]["clicks"] == 1,
        what="the click counted",
    )
    link = stats.json()["link"]
    assert stats.json()["message"] == "success"
    assert link["url"] == "https://example.com/a" and link["shorturl"] == "http://encurta.test/ana"
    assert set(link) == {"shorturl", "url", "title", "timestamp", "ip", "clicks"}


async def test_a_taken_keyword_gets_yourls_already_exists_answer(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])
    await call(client, key, action="shorturl", url="https://example.com/a", keyword="taken")

    again = await call(client, key, action="shorturl", url="https://example.com/b", keyword="taken")

    assert again.status_code == 400
    assert again.json() == {
        "status": "fail",
        "code": "error:keyword",
        "message": TAKEN.format("taken"),
        "errorCode": "400",
        "statusCode": "400",
    }
    reserved = await call(client, key, action="shorturl", url="https://example.com/", keyword="api")
    assert reserved.status_code == 400 and reserved.json()["code"] == "error:keyword"


async def test_a_missing_or_hostile_url_is_refused_as_yourls_refuses_a_bad_one(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])

    missing = await call(client, key, action="shorturl")
    hostile = await call(client, key, action="shorturl", url="javascript:alert(1)")
    private = await call(client, key, action="shorturl", url="http://127.0.0.1/admin")

    assert missing.status_code == 400
    assert missing.json()["code"] == "error:nourl"
    assert missing.json()["message"] == "Missing or malformed URL"
    for refused in (hostile, private):
        assert refused.status_code == 400
        assert refused.json()["status"] == "fail" and refused.json()["code"] == "error:nourl"
    assert "private" in private.json()["message"]
    assert (await call(client, key, action="db-stats")).json()["db-stats"]["total_links"] == 0


async def test_stats_and_db_stats_count_the_key_owners_links_only(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])
    other = await key_of(client, "bea@example.com", ["links:read", "links:write"])
    for keyword in ("one", "two", "three"):
        await call(
            client, key, action="shorturl", url=f"https://example.com/{keyword}", keyword=keyword
        )
    await call(client, other, action="shorturl", url="https://example.com/bea", keyword="bea")
    for _ in range(2):
        await follow(client, "two")
    await follow(client, "three")

    db = await eventually(
        lambda: call(client, key, action="db-stats"),
        lambda response: response.json()["db-stats"]["total_clicks"] == 3,
        what="the clicks counted",
    )
    assert db.json() == {
        "db-stats": {"total_links": 3, "total_clicks": 3},
        "statusCode": "200",
        "message": "success",
    }
    top = (await call(client, key, action="stats", filter="top", limit="2")).json()
    assert [link["shorturl"] for link in top["links"].values()] == [
        "http://encurta.test/two",
        "http://encurta.test/three",
    ]
    assert list(top["links"]) == ["link_1", "link_2"]
    assert top["stats"] == {"total_links": 3, "total_clicks": 3}
    bottom = (await call(client, key, action="stats", filter="bottom", limit="1")).json()
    assert bottom["links"]["link_1"]["shorturl"] == "http://encurta.test/one"
    last = (await call(client, key, action="stats", filter="last", limit="5", start="1")).json()
    assert [link["shorturl"] for link in last["links"].values()] == [
        "http://encurta.test/two",
        "http://encurta.test/one",
    ]
    rand = (await call(client, key, action="stats", filter="rand", limit="3")).json()
    assert len(rand["links"]) == 3
    # No limit: YOURLS answers the totals and no links.
    assert "links" not in (await call(client, key, action="stats")).json()
    # Another owner's code is not found for this key.
    assert (await call(client, key, action="expand", shorturl="bea")).status_code == 404


async def test_not_found_answers(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ["links:read"])

    expand = await call(client, key, action="expand", shorturl="http://encurta.test/nope")
    stats = await call(client, key, action="url-stats", shorturl="nope")

    assert expand.status_code == 404
    assert expand.json() == {
        "keyword": "nope",
        "message": "Error: short URL not found",
        "errorCode": "404",
    }
    assert stats.status_code == 404
    assert stats.json() == {"statusCode": "404", "message": "Error: short URL not found"}


async def test_who_may_call(client: httpx.AsyncClient) -> None:
    reader = await key_of(client, "ana@example.com", ["links:read"])

    no_scope = await call(client, reader, action="shorturl", url="https://example.com/")
    bad = await call(client, "enc_not-a-key", action="db-stats")
    nobody = await client.get(API, params={"action": "db-stats", "format": "json"})
    password = await client.get(
        API, params={"action": "db-stats", "format": "json", "username": "a", "password": "b"}
    )

    assert no_scope.status_code == 403
    assert no_scope.json() == {
        "message": "This API key lacks the scope 'links:write'.",
        "errorCode": "403",
    }
    for refused in (bad, nobody, password):
        assert refused.status_code == 403 and refused.json()["errorCode"] == "403"
    assert bad.json()["message"].startswith("Please log in")
    assert password.json()["message"].startswith("Invalid username or password")
    assert "signature" in password.json()["message"]
    unknown = await call(client, reader, action="nope")
    assert unknown.status_code == 400
    assert unknown.json()["message"] == 'Unknown or missing "action" parameter'


async def test_formats_and_post(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])

    # POST, a form as YOURLS's clients send it, and no format: XML, YOURLS's default.
    made = await client.post(
        API,
        data={
            "signature": key,
            "action": "shorturl",
            "url": "https://example.com/xyz",
            "keyword": "xyz",
        },
    )

    assert made.status_code == 200
    assert made.headers["content-type"].startswith("application/xml")
    root = xml_of(made)
    assert root.tag == "root"
    assert root.findtext("shorturl") == "http://encurta.test/xyz"
    assert root.findtext("url/keyword") == "xyz" and root.findtext("status") == "success"
    simple = await client.get(
        API, params={"signature": key, "action": "expand", "shorturl": "xyz", "format": "simple"}
    )
    assert simple.headers["content-type"].startswith("text/plain")
    assert simple.text == "https://example.com/xyz"
    stats = await client.get(API, params={"signature": key, "action": "stats", "format": "simple"})
    assert stats.text == "Need either XML or JSON format for stats"
    jsonp = await call(client, key, action="expand", shorturl="xyz", format="jsonp", callback="cb")
    assert jsonp.headers["content-type"].startswith("application/javascript")
    assert jsonp.text.startswith('cb({"keyword":"xyz"') and jsonp.text.endswith(")")
    hostile = await call(
        client, key, action="expand", shorturl="xyz", format="jsonp", callback="alert(1)"
    )
    assert hostile.status_code == 400
    assert hostile.json() == {"errorCode": "400", "error": "Invalid callback parameter"}
    refused = await client.get(API, params={"action": "db-stats"})
    assert refused.status_code == 403 and xml_of(refused).findtext("errorCode") == "403"


async def test_bodies_are_bounded_and_text_must_be_storable(client: httpx.AsyncClient) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])

    multipart = await client.post(
        API,
        params={"format": "json"},
        files={"url": (None, "https://example.com/m")},
        data={"signature": key, "action": "shorturl", "keyword": "multi"},
    )
    too_large = await client.post(
        API,
        content=b"action=shorturl&title=" + b"a" * (65 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    nul = await call(client, key, action="shorturl", url="https://example.com/", title="a\x00b")

    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["shorturl"] == "http://encurta.test/multi"
    long_title = await call(
        client, key, action="shorturl", url="https://example.com/t", title="t" * 500
    )
    assert long_title.json()["title"] == "t" * 200  # cut, as YOURLS sanitizes and never refuses
    assert too_large.status_code == 413
    assert nul.status_code == 400 and nul.json()["code"] == "error:nourl"


async def test_a_blocked_domain_is_refused_as_the_json_api_refuses_it(
    client: httpx.AsyncClient,
) -> None:
    key = await key_of(client, "ana@example.com", ["links:read", "links:write"])  # the admin
    admin = bearer((await login(client, "ana@example.com"))["access_token"])
    blocked = await client.post(
        "/api/admin/blocked-domains", json={"domain": "evil.example"}, headers=admin
    )
    assert blocked.status_code in (200, 201), blocked.text

    refused = await eventually(
        lambda: call(client, key, action="shorturl", url="https://login.evil.example/"),
        lambda response: response.status_code == 400,
        what="the blocklist heard of the domain",
    )

    assert refused.json()["code"] == "error:nourl" and "evil.example" in refused.json()["message"]
