"""`encurta reconcile`: the shortener's click counts and analytics' totals agree, or the
command names the links where they do not and exits 1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import AppFactory, asyncpg_dsn
from tests.modules.shortener.helpers import follow
from tests.support.accounts import new_account, shorten

pytestmark = pytest.mark.integration

ENCURTA = Path(sys.executable).parent / "encurta"


async def reconcile(
    database_urls: dict[str, str], data_dir: Path, *args: str, env_modules: str = ""
) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    if env_modules:
        env["ENCURTA_MODULES"] = env_modules
    env |= {f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in database_urls.items()}
    env["ENCURTA_DATA_DIR"] = str(data_dir)
    result = await asyncio.to_thread(
        subprocess.run,
        [str(ENCURTA), "reconcile", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


async def test_counts_that_agree_and_counts_that_do_not(
    app_client: AppFactory, database_urls: dict[str, str], tmp_path: Path
) -> None:
    async with app_client() as client:
        ana = await new_account(client)
        counted = (await shorten(client, ana, "https://example.com/counted"))["code"]
        untouched = (await shorten(client, ana, "https://example.com/untouched"))["code"]
        for _ in range(3):
            await follow(client, counted)

    # Stopped with every click committed; the command delivers what is still pending.
    status, output = await reconcile(database_urls, tmp_path)
    assert status == 0, output
    assert "clicks per link: all 2 agree" in output

    shortener = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    try:
        await shortener.execute(
            "INSERT INTO click_counts (code, clicks) VALUES ($1, 2) "
            "ON CONFLICT (code) DO UPDATE SET clicks = click_counts.clicks + 2",
            untouched,
        )
    finally:
        await shortener.close()

    status, output = await reconcile(database_urls, tmp_path, "--wait", "0")
    assert status == 1, output
    assert "clicks per link: 1 of 2 differ" in output
    assert f"{untouched}  shortener=2  analytics=0" in output
    assert counted not in output


async def test_without_every_module_on_the_inprocess_bus_it_refuses_and_delivers_nothing(
    app_client: AppFactory, database_urls: dict[str, str], tmp_path: Path
) -> None:
    """Draining here would mark events sent that no module here consumes (a user's
    deletion the shortener never hears of): refused, as serve refuses."""
    async with app_client() as client:
        ana = await new_account(client)
        code = (await shorten(client, ana, "https://example.com/pending"))["code"]
        await follow(client, code)

    shortener = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    try:
        # As if the app had stopped before its relay sent them (the inbox would absorb a
        # second delivery anyway).
        await shortener.execute("UPDATE outbox SET sent_at = NULL")
        pending = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        before = await shortener.fetchval(pending)
        status, output = await reconcile(database_urls, tmp_path, env_modules="shortener,analytics")
        after = await shortener.fetchval(pending)
    finally:
        await shortener.close()

    assert status == 1, output
    assert "ENCURTA_MODULES leaves out auth" in output
    assert before == after >= 1
