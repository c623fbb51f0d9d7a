"""`encurta export links|clicks`: the command's own `main` (in a thread, beside the app the
test talks HTTP to), with every module's database by URL, as an operator would run it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory, truncate_all
from tests.modules.shortener.helpers import follow
from tests.support.accounts import Account, new_account, shorten
from tests.support.cli import Encurta, Ran, command_line
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://sho.rt"


@pytest.fixture
def encurta(
    database_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Encurta:
    """`encurta ARGS` with every module's database by URL."""
    asyncio.run(truncate_all(database_urls))
    for name, url in database_urls.items():
        monkeypatch.setenv(f"ENCURTA_{name.upper()}__DATABASE_URL", url)
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENCURTA_SHORTENER__PUBLIC_URL", PUBLIC_URL)

    return command_line(monkeypatch, capsys)


async def clicked(client: httpx.AsyncClient, account: Account, code: str, clicks: int) -> None:
    for _ in range(clicks):
        await follow(client, code)
    await eventually(
        lambda: client.get(f"/api/stats/{code}", headers=account.headers),
        lambda response: response.status_code == 200 and response.json()["totals"]["all"] == clicks,
        what=f"analytics counts the clicks of {code}",
    )


def jsonl(ran: Ran) -> list[dict[str, Any]]:
    assert ran.status == 0, ran
    return [json.loads(line) for line in ran.out.splitlines()]


async def test_links_of_one_owner_or_of_everyone_as_the_api_shows_them(
    app_client: AppFactory, encurta: Encurta
) -> None:
    async with app_client() as client:
        ana = await new_account(client, "ana@example.com")
        bob = await new_account(client, "bob@example.com")
        await shorten(client, ana, "https://example.com/1", code="ana-1", tags=["a"])
        await shorten(client, ana, "https://example.com/2", code="ana-2", title="=1+1")
        await shorten(client, bob, "https://example.com/3", code="bob-1")
        await shorten(client, bob, "https://example.com/4", code="aaa-bob")  # made last

        anas = await encurta("export", "links", "--owner", "ANA@example.com")
        everyone = await encurta("export", "links", "--format", "csv")
        one = await encurta("export", "links", "--code", "bob-1")

        exported = jsonl(anas)
        assert [link["code"] for link in exported] == ["ana-1", "ana-2"]
        for link in exported:
            shown = (await client.get(f"/api/links/{link['code']}", headers=ana.headers)).json()
            assert link == {**shown, "short_url": f"{PUBLIC_URL}/{link['code']}"}
        assert everyone.status == 0, everyone
        rows = list(csv.DictReader(io.StringIO(everyone.out)))
        # Everyone's by code (the unique index pages them); one owner's oldest first.
        assert [row["code"] for row in rows] == ["aaa-bob", "ana-1", "ana-2", "bob-1"]
        assert rows[2]["code"] == "ana-2" and rows[2]["title"] == "'=1+1"
        assert [link["code"] for link in jsonl(one)] == ["bob-1"]


async def test_clicks_go_to_a_file_without_an_address(
    app_client: AppFactory, encurta: Encurta, tmp_path: Path
) -> None:
    async with app_client() as client:
        ana = await new_account(client, "ana@example.com")
        bob = await new_account(client, "bob@example.com")
        await shorten(client, ana, "https://example.com/1", code="ana-1")
        await shorten(client, bob, "https://example.com/2", code="bob-1")
        await clicked(client, ana, "ana-1", 3)
        await clicked(client, bob, "bob-1", 1)
        target = tmp_path / "clicks.csv"

        to_file = await encurta(
            "export",
            "clicks",
            "--owner",
            "ana@example.com",
            "--format",
            "csv",
            "--output",
            str(target),
        )
        everyone = await encurta("export", "clicks")

        assert to_file.status == 0 and to_file.out == "", to_file
        assert f"wrote {target}" in to_file.err
        assert not target.with_name("clicks.csv.part").exists()
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert len(rows) == 3
        assert all(row["browser"] == "Chrome" and row["is_bot"] == "false" for row in rows)
        assert [row["occurred_at"] for row in rows] == sorted(row["occurred_at"] for row in rows)
        assert len(jsonl(everyone)) == 4
        for text in (target.read_text(), everyone.out):
            assert "203.0.113" not in text and "ip" not in text.splitlines()[0]


async def test_an_unknown_owner_or_format_is_refused(encurta: Encurta) -> None:
    nobody = await encurta("export", "links", "--owner", "nobody@example.com")
    bad_format = await encurta("export", "clicks", "--format", "xml")
    bad_what = await encurta("export", "users")

    assert nobody.status == 1 and "no account has the email nobody@example.com" in nobody.err
    assert nobody.out == ""
    assert bad_format.status == 2 and "--format" in bad_format.err
    assert bad_what.status == 2
