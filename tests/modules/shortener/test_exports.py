"""GET /api/links/export over HTTP with real PostgreSQL: the caller's links, exactly as the
links API shows them, oldest first, read in keyset pages; CSV cells defused."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.modules.shortener import exports
from tests.conftest import runtime_of
from tests.modules.shortener.helpers import ShortenerDb
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem
from tests.support.waiting import eventually

GENERIC = ["url", "code", "title", "tags", "created_at"]


async def export(
    client: httpx.AsyncClient, account: Account | None, **params: str
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.get("/api/links/export", params=params, headers=headers)


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def shortener_engine(client: httpx.AsyncClient) -> AsyncEngine:
    return next(m.engine for m in runtime_of(client).modules if m.name == "shortener")


@pytest.fixture
def page_queries() -> Iterator[list[tuple[str, Any]]]:
    """Every page query of the links export, with its parameters (filled by `watch`)."""
    yield []


def watch(engine: AsyncEngine, seen: list[tuple[str, Any]]) -> None:
    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM urls" in statement and "ORDER BY urls.created_at, urls.code" in statement:
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", before)


async def test_jsonl_is_each_link_as_the_api_shows_it_oldest_first_and_only_the_callers(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client, "ana@example.com")
    bob = await new_account(client, "bob@example.com")
    await shorten(client, ana, "https://example.com/b", code="bbb", title="B", tags=["x", "Y"])
    await shorten(client, ana, "https://example.com/a", code="aaa", max_visits=5)
    await shorten(client, ana, "https://example.com/c", code="ccc", password="secret pass")
    await shorten(client, ana, "https://example.com/gone", code="gone")
    await shorten(client, bob, "https://example.com/bob", code="bobs")
    assert (await client.delete("/api/links/gone", headers=ana.headers)).status_code == 204
    # bbb and aaa made at the same instant: the code orders them; ccc is the oldest.
    db = ShortenerDb(database_urls)
    same = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await db.execute("UPDATE urls SET created_at = $1 WHERE code IN ('aaa', 'bbb')", same)
    await db.execute(
        "UPDATE urls SET created_at = $1 WHERE code = 'ccc'", datetime(2026, 1, 1, tzinfo=UTC)
    )

    response = await export(client, ana, format="jsonl")

    exported = lines(response)
    assert [link["code"] for link in exported] == ["ccc", "aaa", "bbb"]
    for link in exported:
        shown = await client.get(f"/api/links/{link['code']}", headers=ana.headers)
        assert link == shown.json()
    assert exported[2]["tags"] == ["x", "Y"] and exported[0]["has_password"] is True
    assert "secret pass" not in response.text and "argon2" not in response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    today = datetime.now(UTC).date().isoformat()
    assert response.headers["content-disposition"] == (
        f"attachment; filename=encurta-links-{today}.jsonl"
    )
    assert [link["code"] for link in lines(await export(client, bob))] == ["bobs"]


async def test_csv_has_the_generic_columns_first_then_every_field_with_formulas_defused(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    made = await shorten(
        client,
        ana,
        "https://example.com/report?a=1",
        code="sheet",
        title='=HYPERLINK("http://evil.example","click")',
        tags=["+cmd", "plain"],
        redirect_rules=[{"when": {"device": "mobile"}, "url": "https://m.example.com/"}],
    )
    await shorten(client, ana, "https://example.com/", code="minus", title="-2+3", tags=["@x"])

    response = await export(client, ana, format="csv")

    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].endswith(".csv")
    header = response.text.splitlines()[0].split(",")
    assert header[:5] == GENERIC
    assert set(header) == set(made) and len(header) == len(made)
    rows = {row["code"]: row for row in csv_rows(response)}
    sheet = rows["sheet"]
    assert sheet["title"] == "'" + made["title"]
    assert sheet["tags"] == "'+cmd|plain"
    assert sheet["url"] == "https://example.com/report?a=1"
    assert sheet["created_at"] == made["created_at"]
    assert json.loads(sheet["redirect_rules"]) == made["redirect_rules"]
    assert sheet["forward_query"] == "false" and sheet["max_visits"] == ""
    assert rows["minus"]["title"] == "'-2+3" and rows["minus"]["tags"] == "'@x"
    for row in rows.values():
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


async def test_an_export_larger_than_a_page_comes_out_whole_read_one_page_at_a_time(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, page_queries: list[Any]
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 3)
    ana = await new_account(client)
    codes = [f"link{n:02d}" for n in range(8)]
    for code in codes:
        await shorten(client, ana, f"https://example.com/{code}", code=code)
    watch(shortener_engine(client), page_queries)

    jsonl = lines(await export(client, ana))
    pages_of_jsonl = list(page_queries)
    page_queries.clear()
    table = csv_rows(await export(client, ana, format="csv"))

    assert [link["code"] for link in jsonl] == codes
    assert [row["code"] for row in table] == codes
    # 8 links in pages of 3: three queries, each asking for no more than a page.
    for queries in (pages_of_jsonl, page_queries):
        assert len(queries) == 3
        for statement, parameters in queries:
            assert "LIMIT" in statement
            assert 3 in tuple(parameters)


async def test_an_exact_multiple_of_the_page_size_ends_after_an_empty_page(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    ana = await new_account(client)
    for code in ("one", "two", "six", "ten"):
        await shorten(client, ana, f"https://example.com/{code}", code=code)

    assert len(lines(await export(client, ana))) == 4


@pytest.mark.parametrize("value", ["xml", "JSONL", "json"])
async def test_an_unknown_format_is_a_422_naming_format(
    client: httpx.AsyncClient, value: str
) -> None:
    ana = await new_account(client)

    assert_problem(await export(client, ana, format=value), 422, fields=["format"])


async def test_the_export_needs_a_token_with_links_read(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    made = await client.post(
        "/api/keys", json={"name": "stats only", "scopes": ["stats:read"]}, headers=ana.headers
    )
    assert made.status_code == 201, made.text

    key = {"X-Api-Key": made.json()["key"]}
    await eventually(
        lambda: client.get("/api/links", headers=key),
        lambda response: response.status_code == 403,
        what="the key reaches the shortener",
    )

    assert_problem(await export(client, None), 401)
    assert_problem(await client.get("/api/links/export", headers=key), 403)


async def test_export_is_a_reserved_code_so_no_link_hides_behind_the_route(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)

    refused = await client.post(
        "/api/links", json={"url": "https://example.com/", "code": "Export"}, headers=ana.headers
    )

    assert_problem(refused, 422, fields=["code"])
