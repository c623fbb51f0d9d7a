"""Visits to codes that do not exist: a tally per day and path, folded into one row each."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from app.modules.shortener import orphans as orphans_module
from app.modules.shortener.orphans import OrphanTally
from app.modules.shortener.redirect import Redirector
from tests.conftest import AppFactory, runtime_of
from tests.modules.shortener.helpers import ShortenerDb
from tests.modules.shortener.test_express import answered, head_of
from tests.support.accounts import new_account, shorten
from tests.support.problems import assert_problem


def tally_of(client: httpx.AsyncClient) -> OrphanTally:
    (front,) = [m.front for m in runtime_of(client).modules if m.front is not None]
    assert isinstance(front, Redirector) and front.orphans is not None
    return front.orphans


async def test_visits_to_a_missing_code_are_counted_in_one_row_and_shown_to_admins(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    db = ShortenerDb(database_urls)
    async with app_client() as client:
        admin = await new_account(client, "admin@example.com")
        user = await new_account(client, "user@example.com")
        await shorten(client, user, code="real")
        for _ in range(25):
            assert_problem(await client.get("/nosuch"), 404)
        assert_problem(await client.get("/wp-login.php"), 404)  # no code looks like that
        assert (await client.get("/real")).status_code == 302  # not an orphan
        assert await db.value("SELECT count(*) FROM orphan_visits") == 0  # not per hit
    # The app's shutdown folded the tally into the table.
    rows = await db.fetch("SELECT day, path, visits FROM orphan_visits ORDER BY path")

    today = datetime.now(UTC).date()
    assert [tuple(row) for row in rows] == [(today, "/nosuch", 25), (today, "/wp-login.php", 1)]
    async with app_client() as client:
        assert_problem(await client.get("/api/stats/orphans", headers=user.headers), 403)
        shown = await client.get("/api/stats/orphans", headers=admin.headers)
        assert shown.status_code == 200, shown.text
        assert shown.json() == {
            "items": [
                {"day": today.isoformat(), "path": "/nosuch", "visits": 25},
                {"day": today.isoformat(), "path": "/wp-login.php", "visits": 1},
            ],
            "days": 30,
            "page": 1,
            "per_page": 100,
            "total": 2,
        }


async def test_each_flush_adds_to_the_days_row(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    tally = tally_of(client)
    for round_ in (3, 4):
        for _ in range(round_):
            assert_problem(await client.get("/again"), 404)
        await tally.flush()

    rows = await ShortenerDb(database_urls).fetch("SELECT path, visits FROM orphan_visits")

    assert [tuple(row) for row in rows] == [("/again", 7)]
    assert tally.pending == 0


async def test_long_paths_are_cut_and_paths_beyond_the_cap_count_as_other(
    client: httpx.AsyncClient, database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orphans_module, "MAX_PATHS", 3)
    tally = tally_of(client)
    long = "x" * 64  # the longest a code may be: served by the redirect
    tally.hit("y" * 5000)  # any path the front door sees, however long
    for code in ("a1", "a2", long, "a4", "a5"):
        assert_problem(await client.get(f"/{code}"), 404)
    await tally.flush()
    for code in ("b1", "b2"):
        assert_problem(await client.get(f"/{code}"), 404)
    await tally.flush()

    rows = await ShortenerDb(database_urls).fetch(
        "SELECT path, visits FROM orphan_visits ORDER BY path"
    )

    paths = {row["path"]: row["visits"] for row in rows}
    assert max(len(path) for path in paths) <= orphans_module.MAX_PATH
    assert len(paths) == 4  # three paths and (other), over both flushes
    assert paths["(other)"] == 5
    assert sum(paths.values()) == 8


@pytest.mark.parametrize(
    ("query", "named"),
    [({"days": 0}, "days"), ({"days": "x"}, "days"), ({"per_page": 0}, "per_page")],
)
async def test_a_bad_orphans_query_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, query: dict[str, object], named: str
) -> None:
    admin = await new_account(client, "admin@example.com")

    response = await client.get("/api/stats/orphans", params=query, headers=admin.headers)

    assert_problem(response, 422, fields=[named])


async def test_the_express_lane_counts_them_too(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    for _ in range(4):
        status, _ = head_of(await answered(client, "/expressly-missing"))
        assert status == "HTTP/1.1 404 Not Found"

    await tally_of(client).flush()

    rows = await ShortenerDb(database_urls).fetch("SELECT path, visits FROM orphan_visits")
    assert [tuple(row) for row in rows] == [("/expressly-missing", 4)]
