"""Visitor hashes cannot be traced back to an address from what the databases hold.

The attack of issue 8: a click's /24, user agent and visitor hash are stored side by side,
so with the hash key an attacker tries the 256 addresses of the /24 and has the exact IPv4.
The key must therefore be in no database: these tests read every row of every database
after a click and try every byte string found there as the key (and as the secret it is
derived from), and it must fail; with the real key, the same attack succeeds.
"""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from app import cli
from app.config import Settings
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.visitors import (
    VisitorKeys,
    VisitorSecretError,
    day_key,
    load_visitor_secret,
    secret_file,
    visitor_hash,
)
from tests.conftest import AppFactory, asyncpg_dsn
from tests.modules.shortener.helpers import CHROME
from tests.support.accounts import new_account, shorten
from tests.support.waiting import eventually

VISITOR = "198.51.100.77"


async def everything_stored(database_urls: dict[str, str]) -> list[Any]:
    """Every value of every row of every table, in every database (version tables too)."""
    values: list[Any] = []
    for url in database_urls.values():
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            tables = await conn.fetch(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
            for table in tables:
                rows = await conn.fetch(
                    f'SELECT * FROM "{table["schemaname"]}"."{table["tablename"]}"'  # noqa: S608
                )
                values.extend(value for row in rows for value in row.values())
        finally:
            await conn.close()
    return values


def flatten(value: Any) -> Iterator[Any]:
    """Scalars inside JSON documents too (outbox payloads, inbox rows)."""
    if isinstance(value, str):
        yield value
        with contextlib.suppress(ValueError):
            decoded = json.loads(value)
            if isinstance(decoded, dict | list):
                yield from flatten(decoded)
    elif isinstance(value, dict):
        for item in value.values():
            yield from flatten(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from flatten(item)
    elif value is not None:
        yield value


def key_material(values: Iterable[Any], day: date) -> set[bytes]:
    """Every byte string the databases hold, as it is, hex-decoded, and as the secret of
    the day's key (the derivation is public: it is in the source)."""
    raw: set[bytes] = set()
    for value in values:
        if isinstance(value, bytes | bytearray | memoryview):
            raw.add(bytes(value))
        elif isinstance(value, str):
            raw.add(value.encode())
            with contextlib.suppress(ValueError):
                raw.add(bytes.fromhex(value))
        else:
            raw.add(str(value).encode())
    keys = {candidate for candidate in raw if 0 < len(candidate) <= 64}  # blake2b's limit
    keys |= {day_key(candidate, day) for candidate in raw if candidate}
    return keys


def recover(network: str, user_agent: str, hashed: str, keys: Iterable[bytes]) -> set[str]:
    """The attack: each of the 256 addresses of the /24 under each candidate key."""
    prefix = network.rsplit(".", 1)[0]
    return {
        f"{prefix}.{last}"
        for key in keys
        for last in range(256)
        if visitor_hash(key, f"{prefix}.{last}", user_agent) == hashed
    }


async def test_nothing_stored_recovers_the_visitor_ipv4(
    app_client: AppFactory, database_urls: dict[str, str], settings: Settings
) -> None:
    async with app_client(client_ip=VISITOR) as client:
        account = await new_account(client)
        code = (await shorten(client, account))["code"]
        response = await client.get(f"/{code}", headers={"User-Agent": CHROME})
        assert response.status_code == 302
        day = datetime.now(UTC).date()
        conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
        try:
            stored = await eventually(
                lambda: conn.fetch(
                    "SELECT ip_anonymized, user_agent, visitor_hash FROM clicks WHERE code = $1",
                    code,
                ),
                lambda rows: len(rows) == 1,
                "the click in analytics",
            )
        finally:
            await conn.close()
        values = await everything_stored(database_urls)

    click = stored[0]
    assert click["ip_anonymized"] == "198.51.100.0"
    assert click["user_agent"] == CHROME
    assert not any(VISITOR in str(value) for value in flatten(values))
    keys = key_material(flatten(values), day)
    assert len(keys) > 50  # the attack did look at what is there
    # The visitor_salts table is gone: no table holds a key of the day.
    assert recover(click["ip_anonymized"], CHROME, click["visitor_hash"], keys) == set()
    # The same attack with the key itself finds the address: only the key was missing.
    secret = secret_file(settings.data_dir).read_text().strip().encode()
    real = day_key(secret, day)
    assert recover(click["ip_anonymized"], CHROME, click["visitor_hash"], [real]) == {VISITOR}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_the_key_changes_with_the_day_and_the_old_one_is_forgotten_on_time() -> None:
    day = date(2026, 3, 14)
    clock = Clock(datetime(2026, 3, 14, 23, 59, 59, 800_000, tzinfo=UTC))
    keys = VisitorKeys(lambda: b"s" * 32, now=clock)
    await keys.start()
    try:
        today = keys.for_day(day)
        assert keys.for_day(day) == today  # one visitor, one day: one hash (uniques)
        assert keys.day == day
        clock.now += timedelta(seconds=1)  # past midnight: the timer fires within ~0.7 s
        await eventually(lambda: keys.day, lambda held: held is None, "yesterday's key dropped")
        assert keys.day is None  # no key held at all until a click of the new day asks
        tomorrow = keys.for_day(day + timedelta(days=1))
        assert tomorrow != today
        assert keys.day == day + timedelta(days=1)  # only the new day's key is held
    finally:
        await keys.stop()
    assert keys.day is None


async def test_a_click_after_midnight_never_gets_yesterdays_key() -> None:
    keys = VisitorKeys(lambda: b"s" * 32)
    await keys.start()
    try:
        first = keys.for_day(date(2026, 3, 14))
        # Asked for the next day before any timer ran: derived afresh, the old one dropped.
        assert keys.for_day(date(2026, 3, 15)) != first
        assert keys.day == date(2026, 3, 15)
    finally:
        await keys.stop()


async def test_the_timer_only_forgets_past_days() -> None:
    clock = Clock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    keys = VisitorKeys(lambda: b"s" * 32, now=clock)
    await keys.start()
    try:
        keys.for_day(date(2026, 3, 14))
        keys.forget_past()
        assert keys.day == date(2026, 3, 14)
        clock.now += timedelta(days=1)
        keys.forget_past()
        assert keys.day is None
    finally:
        await keys.stop()


def test_replicas_with_one_secret_agree_and_other_secrets_do_not() -> None:
    day = date(2026, 3, 14)
    assert day_key(b"a" * 32, day) == day_key(b"a" * 32, day)
    assert day_key(b"a" * 32, day) != day_key(b"b" * 32, day)
    assert day_key(b"a" * 32, day) != day_key(b"a" * 32, day + timedelta(days=1))


def test_the_secret_is_generated_once_into_the_data_dir_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    settings = ShortenerSettings()
    first = load_visitor_secret(settings, tmp_path)
    path = secret_file(tmp_path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(first) >= 32
    # A restart (or a second process) reads the same secret: the day's uniques go on.
    assert load_visitor_secret(settings, tmp_path) == first
    # The file holds what the setting would: it can be copied to the other replicas.
    configured = ShortenerSettings(visitor_secret=SecretStr(path.read_text().strip()))
    assert load_visitor_secret(configured, tmp_path / "elsewhere") == first
    assert not (tmp_path / "elsewhere").exists()  # the setting wins: nothing is generated


def test_a_short_secret_is_refused_without_printing_it(tmp_path: Path) -> None:
    secret = "tooshort-but-secret"
    settings = ShortenerSettings(visitor_secret=SecretStr(secret))

    with pytest.raises(VisitorSecretError) as caught:
        load_visitor_secret(settings, tmp_path)
    assert "ENCURTA_SHORTENER__VISITOR_SECRET" in str(caught.value)
    assert secret not in str(caught.value)


def test_encurta_config_masks_the_visitor_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = "0123456789abcdef" * 4
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENCURTA_SHORTENER__VISITOR_SECRET", secret)

    assert cli.main(["config"]) in (0, None)
    output = capsys.readouterr()
    lines = dict(line.split("=", 1) for line in output.out.splitlines() if "=" in line)
    assert lines["ENCURTA_SHORTENER__VISITOR_SECRET"] == "**********"
    assert secret not in output.out + output.err
    assert list(tmp_path.iterdir()) == []  # and `config` generated nothing


async def test_serving_without_the_secret_setting_generates_the_file(
    app_client: AppFactory, settings: Settings
) -> None:
    assert not secret_file(settings.data_dir).exists()
    async with app_client() as client:
        assert (await client.get("/healthz")).status_code == 200
        assert secret_file(settings.data_dir).exists()


async def test_a_stopped_module_still_answers_a_late_redirect() -> None:
    keys = VisitorKeys(lambda: b"s" * 32)
    await keys.start()
    await keys.stop()
    # uvicorn may finish an in-flight request after the lifespan stopped the module.
    assert keys.for_day(date(2026, 3, 14)) == day_key(b"s" * 32, date(2026, 3, 14))
