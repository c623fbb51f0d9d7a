"""`POST /api/imports` over HTTP with real PostgreSQL: each tool's sample export (with its
hostile rows) under tests/fixtures/imports, re-runs, dry runs, the JSONL round trip, and
what goes wrong with the upload itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.modules.shortener import import_routes
from tests.modules.shortener.helpers import CREATED, ShortenerDb, follow
from tests.support.accounts import PASSWORD, Account, bearer, new_account, shorten
from tests.support.problems import assert_problem
from tests.support.waiting import eventually
from tests.test_serve import Server, data_dir

__all__ = ["data_dir"]  # the fixture, used here by name

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"


async def upload(
    client: httpx.AsyncClient, account: Account, format: str, body: bytes | str, **query: Any
) -> httpx.Response:
    return await client.post(
        "/api/imports",
        params={"format": format, **query},
        content=body.encode() if isinstance(body, str) else body,
        headers={**account.headers, "Content-Type": "text/csv"},
    )


async def imported(
    client: httpx.AsyncClient, account: Account, format: str, fixture: str, **query: Any
) -> dict[str, Any]:
    response = await upload(client, account, format, (FIXTURES / fixture).read_bytes(), **query)
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    return summary


def reasons(summary: dict[str, Any]) -> dict[int, str]:
    return {refusal["line"]: refusal["reason"] for refusal in summary["refusals"]}


async def link(client: httpx.AsyncClient, account: Account, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/links/{code}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def block(client: httpx.AsyncClient, admin: Account, domain: str) -> None:
    response = await client.post(
        "/api/admin/blocked-domains", json={"domain": domain}, headers=admin.headers
    )
    assert response.status_code == 201, response.text


async def test_a_shlink_export_is_imported_and_its_hostile_rows_refused_as_the_api_would(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    admin = await new_account(client, "admin@example.com")  # the first account: an admin
    await block(client, admin, "phish.example.net")
    ana = await new_account(client, "ana@example.com")

    summary = await imported(client, ana, "shlink", "shlink.csv")

    assert (summary["rows"], summary["created"], summary["skipped"], summary["refused"]) == (
        8,
        2,
        0,
        6,
    )
    refused = reasons(summary)
    assert refused[4] == "url: Only http and https links can be shortened."
    assert refused[5] == "url: Only http and https links can be shortened."
    assert refused[6] == "url: The link points at a private or local address."
    assert refused[7] == "code: Use 1 to 64 letters, digits, '-' or '_'."
    assert refused[8] == "code: This code is reserved."
    assert refused[9] == "url: Links to phish.example.net are blocked on this instance."
    docs = await link(client, ana, "shl-docs")
    assert docs["url"] == "https://shlink.io/documentation/"
    assert docs["title"] == "Shlink docs" and docs["tags"] == ["docs", "shlink"]
    assert docs["created_at"].startswith("2024-03-01T10:00:00")
    # The source's clicks are kept apart: counted clicks start at 0, as analytics' do.
    assert (docs["imported_clicks"], docs["click_count"]) == (42, 0)
    await follow(client, "shl-docs")
    assert (await link(client, ana, "shl-docs"))["click_count"] == 1
    db = ShortenerDb(database_urls)
    created = {event["payload"]["code"] for event in await db.outbox(CREATED)}
    assert created == {"shl-docs", "shl-blog"}  # published like any creation
    await eventually(
        lambda: client.get("/api/stats/shl-blog", headers=ana.headers),
        lambda response: response.status_code == 200,
        what="analytics hears of the imported link",
    )


async def test_importing_again_changes_nothing_and_another_owners_code_is_refused(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client, "ana@example.com")
    bob = await new_account(client, "bob@example.com")
    await shorten(client, bob, "https://example.com/bob", code="gen-three")

    first = await imported(client, ana, "csv", "generic.csv")
    db = ShortenerDb(database_urls)
    stored = await db.url_count()
    again = await imported(client, ana, "csv", "generic.csv")

    assert (first["created"], first["skipped"], first["refused"]) == (2, 0, 5)
    assert reasons(first)[4] == "code: The code 'gen-three' is taken."
    assert reasons(first)[6] == "tags: A link has at most 20 tags."
    assert reasons(first)[7] == "created_at: not a date and time ('yesterday')"
    assert (again["created"], again["skipped"], again["refused"]) == (0, 2, 5)
    assert await db.url_count() == stored
    # The row without a code got one derived from owner and target: found again.
    page = (await client.get("/api/links", headers=ana.headers)).json()
    assert sorted(item["url"] for item in page["items"]) == [
        "https://example.com/one",
        "https://example.com/two",
    ]


async def test_a_dry_run_counts_and_stores_nothing(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)

    dry = await imported(client, ana, "yourls", "yourls_url.csv", dry_run="true")

    assert dry["dry_run"] is True
    assert (dry["created"], dry["refused"]) == (2, 3)
    assert reasons(dry)[6] == "clicks: not a click count ('lots')"
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 0 and await db.outbox(CREATED) == []


@pytest.mark.parametrize(
    ("format", "fixture", "created", "refused"),
    [
        ("kutt", "kutt_links.csv", ["kutt-home", "kutt-later"], [4, 5, 6, 7]),
        ("kutt", "kutt_api.json", ["kutt-api"], [2, 3]),
        ("yourls", "yourls_stats.json", ["yo-api"], [2]),
        ("bitly", "bitly.csv", ["bit-blog", "bit-two"], [4, 5, 6]),
    ],
)
async def test_each_tools_export(
    client: httpx.AsyncClient, format: str, fixture: str, created: list[str], refused: list[int]
) -> None:
    ana = await new_account(client)

    summary = await imported(client, ana, format, fixture)

    assert summary["created"] == len(created), summary
    assert sorted(reasons(summary)) == refused, summary
    for code in created:
        await link(client, ana, code)
    if format == "kutt" and fixture.endswith(".csv"):
        assert "password" in reasons(summary)[4]  # and no hash leaks into the reason
        assert "$2a$" not in json.dumps(summary)
        assert reasons(summary)[7] == "expires_at: The expiry must be in the future."


async def test_encurtas_jsonl_export_gives_the_same_links(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    summary = await imported(client, ana, "jsonl", "encurta.jsonl")

    assert summary["created"] == 2, summary
    refused = reasons(summary)
    assert "password" in refused[3]
    assert refused[4].startswith("redirect_rules.0.url: Only http and https")
    assert (refused[5], refused[6]) == ("not a JSON value", "not a JSON object")
    full = await link(client, ana, "jl-full")
    source = json.loads((FIXTURES / "encurta.jsonl").read_text().splitlines()[0])
    for name in ("url", "title", "tags", "expires_at", "valid_from", "forward_query"):
        value = full[name]
        if isinstance(value, str) and value.endswith("+00:00"):
            value = value.removesuffix("+00:00") + "Z"
        assert value == source[name], name
    assert full["max_visits"] == 10 and full["redirect_rules"] == source["redirect_rules"]
    assert full["imported_clicks"] == 5 + 7 and full["click_count"] == 0


async def test_what_is_wrong_with_the_upload_is_named(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    bad_format = await upload(client, ana, "excel", "url\n")
    not_text = await upload(client, ana, "csv", b"url\n\xff\xfe\n")
    long_line = await upload(client, ana, "csv", "url\n" + "x" * (65 * 1024) + "\n")
    no_header = await upload(client, ana, "csv", "https://example.com/,abc\n")
    anonymous = await client.post("/api/imports", params={"format": "csv"}, content=b"url\n")

    assert_problem(bad_format, 422)
    assert bad_format.json()["errors"][0]["field"] == "format"
    assert_problem(not_text, 422)
    assert not_text.json()["errors"][0]["field"] == "body"
    assert_problem(long_line, 413)
    assert "line 2" in long_line.json()["detail"]
    assert_problem(no_header, 422)
    assert "header" in no_header.json()["errors"][0]["message"]
    assert anonymous.status_code == 401


@pytest.mark.integration
def test_an_upload_streams_through_a_real_encurta_serve(data_dir: Path) -> None:
    """The body arrives in chunks (chunked encoding, no length) through the server's own
    HTTP protocol: the route takes more than the limit on any body, up to the upload limit."""
    server = Server(
        data_dir,
        ENCURTA_SERVER__MAX_BODY_BYTES=str(2 * 1024),
        ENCURTA_SERVER__UPLOAD_MAX_BYTES=str(64 * 1024),
    )
    try:
        server.wait_ready()
        account = {"email": "ana@example.com", "password": PASSWORD}
        assert httpx.post(f"{server.url}/api/auth/register", json=account).status_code == 201
        token = httpx.post(f"{server.url}/api/auth/login", json=account).json()["access_token"]
        sample = (FIXTURES / "shlink.csv").read_bytes()

        def chunks(body: bytes) -> Iterator[bytes]:
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        made = httpx.post(
            f"{server.url}/api/imports?format=shlink",
            content=chunks(sample),
            headers=bearer(token),
        )
        beyond_any_body = httpx.post(
            f"{server.url}/api/imports?format=csv&dry_run=true",
            content=chunks(b"url\n" + b"https://example.com/\n" * 200),
            headers=bearer(token),
        )
        too_large = httpx.post(
            f"{server.url}/api/imports?format=csv",
            content=chunks(b"url\n" + b"https://example.com/\n" * 4000),
            headers=bearer(token),
        )

        assert made.status_code == 200, made.text
        assert (made.json()["created"], made.json()["refused"]) == (3, 5)
        assert beyond_any_body.status_code == 200, beyond_any_body.text
        assert beyond_any_body.json()["rows"] == 200
        assert too_large.status_code == 413
        assert "64 KiB" in too_large.json()["detail"]
        listed = httpx.get(f"{server.url}/api/links", headers=bearer(token)).json()
        assert {item["code"] for item in listed["items"]} == {"shl-docs", "shl-blog", "shl-bad"}
    finally:
        server.interrupt()


async def test_a_yourls_install_keeps_its_short_codes(client: httpx.AsyncClient) -> None:
    """YOURLS's first links are `1`, `2`, `a`: printed somewhere, they must keep working."""
    ana = await new_account(client)
    table = "1,https://example.com/one,One,2015-01-01 00:00:00,10.0.0.1,5\n"
    table += "a,https://example.com/a,A,2015-01-02 00:00:00,10.0.0.2,0\n"

    summary = (await upload(client, ana, "yourls", table)).json()

    assert (summary["created"], summary["refused"]) == (2, 0), summary
    assert (await follow(client, "1")).headers["location"] == "https://example.com/one"
    assert (await link(client, ana, "a"))["imported_clicks"] == 0


async def test_a_json_dump_is_not_held_to_the_line_limit(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    links = [{"target": f"https://example.com/{n}", "address": f"k-{n}"} for n in range(1500)]
    dump = json.dumps({"total": len(links), "data": links})
    assert len(dump) > 64 * 1024  # one line, past the limit on a CSV's line

    response = await upload(client, ana, "kutt", dump, dry_run="true")

    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 1500


async def test_encurtas_csv_export_imported_keeps_its_guards(client: httpx.AsyncClient) -> None:
    ana = await new_account(client, "ana@example.com")
    bea = await new_account(client, "bea@example.com")
    made = await client.post(
        "/api/links",
        json={"url": "https://example.com/limited", "code": "limited", "max_visits": 5},
        headers=ana.headers,
    )
    assert made.status_code == 201, made.text
    await client.post(
        "/api/links",
        json={"url": "https://example.com/locked", "code": "locked", "password": PASSWORD},
        headers=ana.headers,
    )
    exported = await client.get("/api/links/export?format=csv", headers=ana.headers)
    moved = exported.text.replace("limited", "limited-2").replace("locked", "locked-2")

    summary = (await upload(client, bea, "csv", moved)).json()

    assert (summary["created"], summary["refused"]) == (1, 1), summary
    assert "password" in summary["refusals"][0]["reason"]
    assert (await link(client, bea, "limited-2"))["max_visits"] == 5


async def test_a_nul_or_a_lone_surrogate_refuses_its_row_not_the_whole_import(
    client: httpx.AsyncClient,
) -> None:
    """PostgreSQL cannot store either: without a check, the batch's INSERT failed, a 500,
    and every row after it (in this batch and the next) was lost on every re-run."""
    ana = await new_account(client)
    csv_body = (
        "url,code,title,tags\n"
        "https://example.com/a,nul-title,a\x00b,\n"
        'https://example.com/b,nul-tag,,"x|y\x00z"\n'
        "https://example.com/c,fine-csv,Fine,\n"
    )
    jsonl_body = (
        '{"url": "https://example.com/d", "code": "lone-one", "tags": ["\\ud800"]}\n'
        '{"url": "https://example.com/e", "code": "fine-jsonl"}\n'
    )

    from_csv = await upload(client, ana, "csv", csv_body)
    from_jsonl = await upload(client, ana, "jsonl", jsonl_body)

    assert from_csv.status_code == 200, from_csv.text
    assert from_jsonl.status_code == 200, from_jsonl.text
    assert (from_csv.json()["created"], from_csv.json()["refused"]) == (1, 2)
    assert reasons(from_csv.json()) == {
        2: "title: Text must not contain NUL or lone surrogates.",
        3: "tags.1: Text must not contain NUL or lone surrogates.",
    }
    assert (from_jsonl.json()["created"], from_jsonl.json()["refused"]) == (1, 1)
    assert reasons(from_jsonl.json()) == {
        1: "tags.0: Text must not contain NUL or lone surrogates."
    }
    assert (await link(client, ana, "fine-csv"))["title"] == "Fine"
    await link(client, ana, "fine-jsonl")


async def test_one_import_per_account_at_a_time_and_a_few_in_all(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upload may spool 1 GiB to disk: concurrent ones by one account (or by many)
    could fill it. The next waits its turn: a 429 before its body is read."""
    ana = await new_account(client, "ana@example.com")
    bob = await new_account(client, "bob@example.com")
    cem = await new_account(client, "cem@example.com")
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"url,code\n"
        reading.set()
        await release.wait()
        yield b"https://example.com/slow,slow-one\n"

    first = asyncio.create_task(
        client.post(
            "/api/imports", params={"format": "csv"}, content=slow_body(), headers=ana.headers
        )
    )
    await asyncio.wait_for(reading.wait(), 30)  # a guard: the import is under way

    same_account = await upload(client, ana, "csv", "url\nhttps://example.com/a\n")
    another = await upload(client, bob, "csv", "url,code\nhttps://example.com/b,bob-one\n")
    monkeypatch.setattr(import_routes, "MAX_IMPORTS_AT_ONCE", 1)
    past_the_cap = await upload(client, cem, "csv", "url\nhttps://example.com/c\n")
    release.set()
    done = await asyncio.wait_for(first, 30)
    monkeypatch.undo()
    after = await upload(client, ana, "csv", "url,code\nhttps://example.com/a,ana-after\n")

    assert_problem(same_account, 429)
    assert same_account.headers["Retry-After"] == str(import_routes.RETRY_AFTER_SECONDS)
    assert another.status_code == 200 and another.json()["created"] == 1
    assert_problem(past_the_cap, 429)
    assert done.status_code == 200 and done.json()["created"] == 1, done.text
    assert after.status_code == 200 and after.json()["created"] == 1
