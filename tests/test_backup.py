"""`encurta backup` of a serving instance, `encurta restore` into a fresh one: the same
links, click counts, statistics, accounts and signing key; damaged or misplaced restores
refused before anything is touched."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from tests.conftest import asyncpg_dsn, traversable_tmp
from tests.modules.shortener.helpers import CHROME
from tests.support.accounts import EMAIL, PASSWORD, bearer
from tests.support.cli import command_line
from tests.test_serve import ENCURTA, Server, encurta_env
from tests.test_yourls_client import until

pytestmark = pytest.mark.integration


@pytest.fixture
def root() -> Iterator[Path]:
    path = traversable_tmp("encurta-test-backup-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def encurta(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENCURTA), *argv],
        env=encurta_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def seen(server: Server, token: str) -> dict[str, Any]:
    """What a user sees: their links (code, target, clicks) and each link's statistics."""
    links = httpx.get(f"{server.url}/api/links", headers=bearer(token)).json()["items"]
    stats = {}
    for link in links:
        body = httpx.get(f"{server.url}/api/stats/{link['code']}", headers=bearer(token)).json()
        stats[link["code"]] = {key: body[key] for key in ("totals", "unique_clicks", "top")}
    return {
        "links": sorted((link["code"], link["url"], link["click_count"]) for link in links),
        "stats": stats,
    }


def test_a_backup_restored_into_a_fresh_instance_has_the_same_links_and_statistics(
    root: Path,
) -> None:
    first, fresh, folder = root / "first", root / "fresh", root / "backup"
    server = Server(first)
    try:
        server.wait_ready()
        account = {"email": EMAIL, "password": PASSWORD}
        assert httpx.post(f"{server.url}/api/auth/register", json=account).status_code == 201
        token = httpx.post(f"{server.url}/api/auth/login", json=account).json()["access_token"]
        for code, target in (("guide", "https://example.com/guide"), ("blog", None)):
            made = httpx.post(
                f"{server.url}/api/links",
                json={"url": target or "https://example.com/blog", "code": code},
                headers=bearer(token),
            )
            assert made.status_code == 201, made.text
        for code in ("guide", "guide", "guide", "blog"):
            visit = httpx.get(f"{server.url}/{code}", headers={"User-Agent": CHROME})
            assert visit.status_code == 302
        before = until(
            lambda: seen(server, token),
            lambda view: (
                {code: s["totals"]["all"] for code, s in view["stats"].items()}
                == {"guide": 3, "blog": 1}
                and [clicks for _, _, clicks in view["links"]] == [1, 3]
            ),
        )
        assert [clicks for _, _, clicks in before["links"]] == [1, 3], before

        taken = encurta(first, "backup", str(folder))  # online: serve keeps running
        assert taken.returncode == 0, taken.stderr
        assert "holds secrets" in taken.stdout
        assert PASSWORD not in taken.stdout + taken.stderr
    finally:
        server.interrupt()

    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["modules"]) == ["auth", "shortener", "analytics", "webhooks"]
    assert "auth-ed25519.pem" in manifest["secrets"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "keys" / "auth-ed25519.pem").stat().st_mode) == 0o600
    again = encurta(first, "backup", str(folder))
    assert again.returncode == 1 and "not an empty folder" in again.stderr

    # A damaged dump is refused, naming module and file, before any database is touched.
    damaged = root / "damaged"
    shutil.copytree(folder, damaged)
    with (damaged / "shortener.dump").open("r+b") as dump:
        dump.seek(100)
        byte = dump.read(1)
        dump.seek(100)
        dump.write(bytes([byte[0] ^ 0xFF]))
    refused = encurta(fresh, "restore", str(damaged))
    assert refused.returncode == 1
    assert "shortener" in refused.stderr and "shortener.dump" in refused.stderr
    assert "checksum" in refused.stderr
    assert not (fresh / "postgres").exists() and not (fresh / "keys").exists()

    restored = encurta(fresh, "restore", str(folder))
    assert restored.returncode == 0, restored.stderr
    assert stat.S_IMODE((fresh / "keys" / "auth-ed25519.pem").stat().st_mode) == 0o600

    server = Server(fresh)
    try:
        server.wait_ready()
        # The old token verifies: the signing key and the access lists came back.
        assert seen(server, token) == before
        login = httpx.post(f"{server.url}/api/auth/login", json=account)
        assert login.status_code == 200  # the password hash came back
        # The shortener's click counts and analytics' totals agree, as the README says.
        reconciled = encurta(fresh, "reconcile", "--wait", "30")
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
        assert httpx.get(f"{server.url}/guide").headers["location"] == "https://example.com/guide"

        # Under a running serve: refused, even with --force.
        twice = encurta(fresh, "restore", "--force", str(folder))
        assert twice.returncode == 1, twice.stdout
        assert "is running" in twice.stderr and "stop it before restoring" in twice.stderr
    finally:
        server.interrupt()
    assert sorted(os.listdir(fresh / "keys")) == sorted(manifest["secrets"])


async def test_a_backup_of_an_older_version_restores_into_a_configured_server_and_migrates_forward(
    embedded_postgres: EmbeddedPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Configured URLs (another role and database on each side, the password given to the
    tools in their environment), and a dump at revision shortener_0002 that the restore
    brings to the latest revision with its rows (its click count moved to another table by
    a later migration)."""
    made = await embedded_postgres.provision(["backup_source", "backup_target"])
    source, target = made["backup_source"], made["backup_target"]
    await asyncio.to_thread(migrations.upgrade, "shortener", source, "shortener_0002")
    conn = await asyncpg.connect(asyncpg_dsn(source))
    try:
        await conn.execute(
            "INSERT INTO urls (id, code, target_url, click_count) "
            "VALUES (gen_random_uuid(), 'old', 'https://example.com/old', 5)"
        )
    finally:
        await conn.close()
    encurta_in_process = command_line(monkeypatch, capsys)
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENCURTA_MODULES", "shortener")
    folder = tmp_path / "backup"

    monkeypatch.setenv("ENCURTA_SHORTENER__DATABASE_URL", source)
    monkeypatch.setenv("ENCURTA_SHORTENER__VISITOR_SECRET", "s" * 40)
    taken = await encurta_in_process("backup", str(folder))
    assert taken.status == 0, taken
    # A secret given in the settings is not in the data dir: the operator is told.
    assert "not copied: ENCURTA_SHORTENER__VISITOR_SECRET is configured" in taken.out
    assert "s" * 40 not in taken.out
    assert "revision shortener_0002" in taken.out
    password = make_url(source).password
    assert password and password not in taken.out + taken.err

    monkeypatch.setenv("ENCURTA_SHORTENER__DATABASE_URL", target)
    restored = await encurta_in_process("restore", str(folder))
    assert restored.status == 0, restored
    latest = migrations.heads("shortener")
    assert latest and f"shortener: at revision {','.join(sorted(latest))}" in restored.out
    conn = await asyncpg.connect(asyncpg_dsn(target))
    try:
        row = await conn.fetchrow(  # since shortener_0008, counts have their own table
            "SELECT target_url, clicks AS click_count FROM urls JOIN click_counts USING (code) "
            "WHERE code = 'old'"
        )
    finally:
        await conn.close()
    assert row is not None and (row["target_url"], row["click_count"]) == (
        "https://example.com/old",
        5,
    )

    # Into a database that has tables: refused without --force, naming the module.
    twice = await encurta_in_process("restore", str(folder))
    assert twice.status == 1, twice
    assert "shortener: its database already has" in twice.err and "--force" in twice.err

    # --force replaces what is there: the same rows again, not twice.
    forced = await encurta_in_process("restore", "--force", str(folder))
    assert forced.status == 0, forced
    conn = await asyncpg.connect(asyncpg_dsn(target))
    try:
        assert await conn.fetchval("SELECT count(*) FROM urls") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda folder: (folder / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda folder: (folder / "auth.dump").unlink(), "auth.dump is missing"),
        (
            lambda folder: _edit(folder, secrets={"../evil": _entry(folder, "auth.dump")}),
            "not plain file names",
        ),
        (lambda folder: _edit(folder, modules={"billing": {}}), "modules this encurta lacks"),
        (
            lambda folder: _edit(
                folder, modules={"auth": {**_entry(folder, "auth.dump"), "revision": ["auth_9999"]}}
            ),
            "revision auth_9999, which this encurta",
        ),
    ],
)
async def test_restore_refuses_a_broken_backup_before_touching_anything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: Any,
    refusal: str,
) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "auth.dump").write_bytes(b"not really a dump")
    (folder / "manifest.json").write_text(
        json.dumps({"format": 1, "modules": {"auth": _entry(folder, "auth.dump")}})
    )
    change(folder)
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))
    ran = await command_line(monkeypatch, capsys)("restore", str(folder))

    assert ran.status == 1, ran
    assert ran.err.startswith("encurta restore: ") and refusal in ran.err, ran
    assert not (tmp_path / "data").exists()  # no server started, no key written


def _entry(folder: Path, name: str) -> dict[str, Any]:
    data = (folder / name).read_bytes()
    return {"file": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _edit(folder: Path, **changes: dict[str, Any]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for key, entries in changes.items():
        manifest.setdefault(key, {}).update(entries)
    (folder / "manifest.json").write_text(json.dumps(manifest))
