"""`encurta import`: the command's own `main` (in a thread, beside the app the test talks
HTTP to) with both databases by URL, as an operator with external databases runs it; and
the real console script, whose peak memory must not grow with the rows it imports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.modules.shortener.cache import LinkCache
from app.modules.shortener.import_command import offline_request
from app.modules.shortener.import_formats import ImportRow, parse
from app.modules.shortener.imports import Importer, Summary
from app.modules.shortener.routes import target_checker
from app.modules.shortener.service import Links
from app.modules.shortener.settings import ShortenerSettings
from tests.conftest import AppFactory, truncate_all
from tests.modules.shortener.helpers import ShortenerDb
from tests.support.accounts import Account, new_account
from tests.support.cli import Encurta, command_line
from tests.test_serve import encurta_env

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"
ENCURTA = Path(sys.executable).parent / "encurta"


@pytest.fixture
def encurta(
    database_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Encurta:
    for module, url in database_urls.items():  # every module: `reconcile` opens them all
        monkeypatch.setenv(f"ENCURTA_{module.upper()}__DATABASE_URL", url)
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))

    return command_line(monkeypatch, capsys)


async def links_of(client: httpx.AsyncClient, account: Account) -> list[str]:
    page = (await client.get("/api/links", headers=account.headers)).json()
    return sorted(item["code"] for item in page["items"])


async def test_an_import_for_an_owner_then_again_changes_nothing(
    app_client: AppFactory, encurta: Encurta, database_urls: dict[str, str]
) -> None:
    run = encurta
    async with app_client() as client:
        admin = await new_account(client, "admin@example.com")
        blocked = await client.post(
            "/api/admin/blocked-domains",
            json={"domain": "phish.example.net"},
            headers=admin.headers,
        )
        assert blocked.status_code == 201, blocked.text
        ana = await new_account(client, "ana@example.com")
        shlink = str(FIXTURES / "shlink.csv")

        dry = await run("import", "shlink", shlink, "--owner", "ANA@example.com", "--dry-run")
        assert await ShortenerDb(database_urls).url_count() == 0
        first = await run("import", "shlink", shlink, "--owner", "ana@example.com")
        again = await run("import", "shlink", shlink, "--owner", "ana@example.com")

        assert dry.status == 0 and "2 would be created" in dry.out, dry
        assert "(dry run: nothing stored)" in dry.out
        assert first.status == 0, first
        assert "line 4: url: Only http and https links can be shortened." in first.out
        assert "line 6: url: The link points at a private or local address." in first.out
        assert "line 9: url: Links to phish.example.net are blocked" in first.out
        assert first.out.splitlines()[-1] == (
            "8 rows: 2 created, 0 skipped (already there), 6 refused"
        )
        assert again.out.splitlines()[-1] == (
            "8 rows: 0 created, 2 skipped (already there), 6 refused"
        )
        assert await links_of(client, ana) == ["shl-blog", "shl-docs"]
        # Imported clicks stay apart: the shortener's counts still agree with analytics'.
        reconciled = await run("reconcile", "--wait", "30")
        assert reconciled.status == 0, reconciled
        assert "clicks per link: all 2 agree" in reconciled.out, reconciled


async def test_without_an_owner_the_only_admin_owns_them_and_bad_input_is_one_line(
    app_client: AppFactory, encurta: Encurta, tmp_path: Path
) -> None:
    run = encurta
    async with app_client() as client:
        admin = await new_account(client, "admin@example.com")
        await new_account(client, "bob@example.com")

        owned = await run("import", "yourls", str(FIXTURES / "yourls_stats.json"))
        nobody = await run("import", "csv", str(FIXTURES / "generic.csv"), "--owner", "x@y.z")
        missing = await run("import", "csv", str(tmp_path / "none.csv"))
        (tmp_path / "bad.json").write_text("{not json")
        not_json = await run("import", "kutt", str(tmp_path / "bad.json"))
        bad_format = await run("import", "excel", str(tmp_path / "none.csv"))

        assert owned.status == 0 and "1 created" in owned.out, owned
        assert await links_of(client, admin) == ["yo-api"]
        assert nobody.status == 1 and "no account has the email x@y.z" in nobody.err
        assert missing.status == 1 and "cannot read" in missing.err
        assert not_json.status == 1 and "is not a kutt export" in not_json.err
        assert bad_format.status == 2
        for ran in (nobody, missing, not_json):
            assert len(ran.err.strip().splitlines()) == 1, ran


async def test_the_importer_never_holds_more_than_a_batch(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    """Rows are pulled as they are stored: read minus stored never exceeds one batch."""
    async with app_client() as client:
        ana = await new_account(client)
        read = 0
        stored = 0
        most_ahead = 0

        def rows() -> Iterator[ImportRow]:
            nonlocal read, most_ahead
            lines = ["url,code\n"] + [f"https://example.com/{n},c-{n}\n" for n in range(2_000)]
            for row in parse("csv", iter(lines)):
                read += 1
                most_ahead = max(most_ahead, read - stored)
                yield row

        def progress(count: int) -> None:
            nonlocal stored
            stored += count

        engine = create_async_engine(database_urls["shortener"])
        try:
            shortener = Links(engine=engine, cache=LinkCache(0, 0), code_length=8)
            summary = await Importer(
                shortener, target_checker(ShortenerSettings(), None), batch_size=300
            ).run(offline_request(), ana.id, rows(), Summary(), progress=progress)
        finally:
            await engine.dispose()

        assert summary.created == 2_000
        assert most_ahead <= 300


def _generic_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("url,code,title,tags,created_at\n")
        for n in range(rows):
            out.write(
                f"https://example.com/{path.stem}/{n},{path.stem}-{n},Page {n},a|b,2025-01-01\n"
            )


def _peak_rss_kib(argv: list[str], env: dict[str, str]) -> int:
    """The command's peak resident memory in KiB, as its own getrusage tells at exit."""
    wrapper = (
        "import resource, sys, runpy\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, str(ENCURTA), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stderr.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_rows(
    database_urls: dict[str, str], tmp_path: Path
) -> None:
    """5,000 then 20,000 rows through the real command: the peak stays where it was
    (a reader that kept the rows would hold ~4 times more)."""
    asyncio.run(truncate_all(database_urls))
    env = {
        **encurta_env(tmp_path / "data"),
        "ENCURTA_AUTH__DATABASE_URL": database_urls["auth"],
        "ENCURTA_SHORTENER__DATABASE_URL": database_urls["shortener"],
        "ENCURTA_LOG_LEVEL": "warning",
    }
    made = subprocess.run(
        [str(ENCURTA), "users", "create", "admin@example.com", "--password-stdin"],
        input="a long and unusual passphrase",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    _generic_csv(small, 5_000)
    _generic_csv(large, 20_000)

    small_peak = _peak_rss_kib(["import", "csv", str(small)], env)
    large_peak = _peak_rss_kib(["import", "csv", str(large)], env)

    assert large_peak - small_peak < 8 * 1024, (small_peak, large_peak)  # KiB
