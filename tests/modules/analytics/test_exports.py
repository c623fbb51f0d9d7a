"""GET /api/stats/{code}/clicks over HTTP with real PostgreSQL: the owner's raw clicks of
one link, oldest first, read in keyset pages; never an address or a visitor hash."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from app.modules.analytics import exports
from tests.conftest import runtime_of
from tests.modules.analytics.helpers import (
    GOOGLEBOT,
    MONDAY,
    SAFARI_IPHONE,
    click,
    created,
    deleted,
    feed,
)
from tests.support.accounts import Account, new_account
from tests.support.problems import assert_problem

FIELDS = [
    "code",
    "occurred_at",
    "country",
    "city",
    "referer",
    "referer_host",
    "user_agent",
    "browser",
    "os",
    "device",
    "is_bot",
]


async def export(
    client: httpx.AsyncClient, account: Account | None, code: str, **params: str
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.get(f"/api/stats/{code}/clicks", params=params, headers=headers)


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def at(minutes: int) -> datetime:
    return MONDAY + timedelta(minutes=minutes)


async def test_the_owner_gets_the_links_clicks_oldest_first_with_no_address_or_hash(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("mine", owner),
        created("other", owner),
        click("mine", at(30), "visitor-b", referer="https://news.example.org/item", city="Porto"),
        click("mine", at(10), "visitor-a", user_agent=SAFARI_IPHONE, country="BR"),
        click("mine", at(20), "visitor-c", user_agent=GOOGLEBOT, is_bot=True),
        click("other", at(15), "visitor-d"),
    )

    response = await export(client, owner, "mine", format="jsonl")
    with_bots = lines(await export(client, owner, "mine", include_bots="true"))

    people = lines(response)
    assert [row["occurred_at"] for row in people] == [
        "2026-03-02T00:10:00Z",
        "2026-03-02T00:30:00Z",
    ]
    assert all(list(row) == FIELDS for row in people)
    first, last = people
    assert first["country"] == "BR" and first["device"] == "mobile" and first["is_bot"] is False
    assert last["referer"] == "https://news.example.org/item"
    assert last["referer_host"] == "news.example.org" and last["city"] == "Porto"
    assert [row["is_bot"] for row in with_bots] == [False, True, False]
    for text in (response.text, json.dumps(with_bots)):
        assert "203.0.113" not in text and "visitor-" not in text and "crawler" not in text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    today = datetime.now(UTC).date().isoformat()
    assert response.headers["content-disposition"] == (
        f"attachment; filename=encurta-clicks-mine-{today}.jsonl"
    )


async def test_from_and_to_narrow_the_range(client: httpx.AsyncClient, owner: Account) -> None:
    await feed(client, created("mine", owner), *(click("mine", at(n)) for n in range(5)))

    narrowed = lines(
        await export(client, owner, "mine", **{"from": at(1).isoformat(), "to": at(3).isoformat()})
    )

    assert [row["occurred_at"][14:16] for row in narrowed] == ["01", "02"]


async def test_csv_has_a_header_and_defuses_formulas(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await feed(
        client,
        created("mine", owner),
        click("mine", at(1), user_agent="=cmd|' /C calc'!A0", city="@SUM(A1)", referer=None),
    )

    response = await export(client, owner, "mine", format="csv")

    assert response.text.splitlines()[0] == ",".join(FIELDS)
    (row,) = csv_rows(response)
    assert row["user_agent"] == "'=cmd|' /C calc'!A0" and row["city"] == "'@SUM(A1)"
    assert row["referer"] == "" and row["referer_host"] == "direct"
    assert row["is_bot"] == "false" and row["occurred_at"] == "2026-03-02T00:01:00Z"
    assert "203.0.113" not in response.text and "visitor" not in response.text


async def test_a_link_not_yours_is_404_as_the_stats_answer(
    client: httpx.AsyncClient, owner: Account
) -> None:
    other = await new_account(client, "other@example.com")
    await feed(
        client,
        created("mine", owner),
        created("gone", owner),
        click("mine", at(1)),
        deleted("gone", owner),
    )

    others_view = assert_problem(await export(client, other, "mine"), 404)
    unknown = assert_problem(await export(client, owner, "nope"), 404)
    gone = assert_problem(await export(client, owner, "gone"), 404)
    impossible = assert_problem(await export(client, owner, "a.b"), 404)
    stats_view = assert_problem(await client.get("/api/stats/mine", headers=other.headers), 404)
    assert others_view == unknown == gone == impossible == stats_view
    assert_problem(await export(client, None, "mine"), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"from": "yesterday"}, "from"),
        ({"include_bots": "maybe"}, "include_bots"),
        ({"from": "2026-03-05T00:00:00Z", "to": "2026-03-04T00:00:00Z"}, "from"),
        # Out of range once in UTC: astimezone overflowed, a 500.
        ({"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ({"to": "9999-12-31T23:59:59-14:00"}, "to"),
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, owner: Account, params: dict[str, str], field: str
) -> None:
    await feed(client, created("mine", owner))

    assert_problem(await export(client, owner, "mine", **params), 422, fields=[field])


async def test_more_clicks_than_a_page_come_out_whole_one_page_query_at_a_time(
    client: httpx.AsyncClient, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 4)
    # Same instant for several clicks: the keyset must not lose or repeat any of them.
    moments = [at(n // 3) for n in range(10)]
    await feed(client, created("mine", owner), *(click("mine", moment) for moment in moments))
    engine = next(m.engine for m in runtime_of(client).modules if m.name == "analytics")
    pages: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM clicks" in statement and "ORDER BY clicks.code" in statement:
            pages.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", before)

    rows = lines(await export(client, owner, "mine"))

    assert [row["occurred_at"] for row in rows] == [
        moment.isoformat().replace("+00:00", "Z") for moment in moments
    ]
    assert len(pages) == 3  # 4 + 4 + 2
    assert all("LIMIT" in statement and 4 in tuple(params) for statement, params in pages)


async def test_an_export_of_many_links_crosses_from_link_to_link_between_pages(
    client: httpx.AsyncClient, owner: Account
) -> None:
    other = await new_account(client, "other@example.com")
    await feed(
        client,
        created("aaa", owner),
        created("bbb", owner),
        created("ccc", owner),
        created("theirs", other),
        *(click("bbb", at(n), f"b{n}") for n in (3, 1, 2, 0)),
        *(click("aaa", at(n), f"a{n}") for n in (5, 4)),
        click("ccc", at(9)),
        click("theirs", at(0)),
    )
    engine = next(m.engine for m in runtime_of(client).modules if m.name == "analytics")

    mine = exports.ClickExport(engine, page_size=3).pages(exports.ClickFilter(owner_id=owner.id))
    everyone = exports.ClickExport(engine, page_size=2).pages(exports.ClickFilter())

    pages = [[click.occurred_at.minute for click in page] async for page in mine]
    assert pages == [[4, 5, 0], [1, 2, 3], [9]]  # aaa's, then bbb's, then ccc's
    assert len([click async for page in everyone for click in page]) == 8
