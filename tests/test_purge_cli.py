"""`encurta purge [--dry-run] [--module NAME]`: the retention rules once, as an operator
runs them, with every module's database by URL. It prints a table: module, what, older
than, rows that went (or would go)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import asyncpg_dsn, truncate_all
from tests.support.cli import Encurta, command_line

pytestmark = pytest.mark.integration


@pytest.fixture
def encurta(
    database_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Encurta:
    asyncio.run(truncate_all(database_urls))
    for name, url in database_urls.items():
        monkeypatch.setenv(f"ENCURTA_{name.upper()}__DATABASE_URL", url)
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))
    return command_line(monkeypatch, capsys)


async def parked(url: str, *ages_in_days: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for age in ages_in_days:
            await conn.execute(
                "INSERT INTO parked_events (id, type, envelope, error, attempts, "
                "first_failed_at) VALUES ($1, 'x.v1', '{}', 'boom', 5, "
                "now() - make_interval(days => $2))",
                uuid.uuid4(),
                age,
            )
    finally:
        await conn.close()


async def parked_count(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM parked_events")
        return count
    finally:
        await conn.close()


def line(out: str, module: str, what: str) -> list[str]:
    """The row of the table for this module and rule, split on runs of spaces."""
    for row in out.splitlines():
        if row.startswith(module + " ") and f" {what} " in row:
            return row.split()
    raise AssertionError(f"no row for {module} {what} in:\n{out}")


async def test_a_dry_run_reports_what_would_go_and_deletes_nothing(
    encurta: Encurta, database_urls: dict[str, str]
) -> None:
    await parked(database_urls["shortener"], 40, 31, 2)
    await parked(database_urls["webhooks"], 45)

    ran = await encurta("purge", "--dry-run")

    assert ran.status == 0, ran
    header = ran.out.splitlines()[0].split()
    assert header == ["module", "what", "older", "than", "would", "go"]
    assert line(ran.out, "shortener", "parked events")[-3:] == ["30", "days", "2"]
    assert line(ran.out, "webhooks", "parked events")[-3:] == ["30", "days", "1"]
    assert line(ran.out, "analytics", "raw clicks")[-2:] == ["kept", "-"]
    assert line(ran.out, "auth", "outbox rows sent")[-3:] == ["1", "hour", "0"]
    assert line(ran.out, "analytics", "inbox event ids")[-2:] == ["expired", "0"]
    assert "nothing was deleted" in ran.out
    assert await parked_count(database_urls["shortener"]) == 3
    assert await parked_count(database_urls["webhooks"]) == 1


async def test_a_purge_of_one_module_deletes_its_rows_only(
    encurta: Encurta, database_urls: dict[str, str]
) -> None:
    await parked(database_urls["shortener"], 40, 31, 2)
    await parked(database_urls["webhooks"], 45)

    ran = await encurta("purge", "--module", "shortener")

    assert ran.status == 0, ran
    assert ran.out.splitlines()[0].split()[-1] == "gone"
    assert line(ran.out, "shortener", "parked events")[-1] == "2"
    assert {row.split()[0] for row in ran.out.splitlines()[1:]} == {"shortener"}
    assert await parked_count(database_urls["shortener"]) == 1
    assert await parked_count(database_urls["webhooks"]) == 1


async def test_an_unknown_module_is_a_usage_error(encurta: Encurta) -> None:
    ran = await encurta("purge", "--module", "nope")
    assert ran.status == 2
    assert "--module" in ran.err


async def test_a_retention_within_the_replay_horizon_is_refused_naming_it(
    encurta: Encurta, monkeypatch: pytest.MonkeyPatch, database_urls: dict[str, str]
) -> None:
    await parked(database_urls["analytics"], 40)
    monkeypatch.setenv("ENCURTA_ANALYTICS__VISITOR_RETENTION_DAYS", "5")

    ran = await encurta("purge", "--module", "analytics")

    assert ran.status == 1, ran
    assert "ENCURTA_ANALYTICS__VISITOR_RETENTION_DAYS (5 days) must be longer" in ran.err
    assert await parked_count(database_urls["analytics"]) == 1  # nothing was purged
