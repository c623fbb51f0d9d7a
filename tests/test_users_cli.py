"""`encurta users ...`: accounts administered on the server.

Most tests run the command's own `main` (in a thread, beside the app the test talks HTTP
to), with ENCURTA_AUTH__DATABASE_URL set, as an operator with an external database would;
one runs the real console script beside a live `encurta serve` and its embedded server.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AppFactory, traversable_tmp, truncate_all
from tests.support.accounts import PASSWORD, bearer, login, refresh, register
from tests.support.cli import Encurta, Ran, command_line
from tests.support.problems import assert_problem
from tests.test_serve import Server, encurta_env

pytestmark = pytest.mark.integration

ENCURTA = Path(sys.executable).parent / "encurta"
NEW_PASSWORD = "another quite unusual passphrase"
FAST_ARGON2 = {
    "ENCURTA_AUTH__ARGON2__TIME_COST": "1",
    "ENCURTA_AUTH__ARGON2__MEMORY_COST_KIB": "64",
    "ENCURTA_AUTH__ARGON2__PARALLELISM": "1",
}


@pytest.fixture
def encurta(
    database_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Encurta:
    """`encurta ARGS` with auth's database by URL, `stdin` as its standard input."""
    asyncio.run(truncate_all(database_urls))
    monkeypatch.setenv("ENCURTA_AUTH__DATABASE_URL", database_urls["auth"])
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path / "data"))
    for name, value in FAST_ARGON2.items():
        monkeypatch.setenv(name, value)

    return command_line(monkeypatch, capsys)


def never_shows_a_secret(*runs: Ran) -> None:
    for ran in runs:
        output = ran.out + ran.err
        assert PASSWORD not in output and NEW_PASSWORD not in output, ran
        assert "$argon2" not in output, ran


async def test_the_first_account_is_an_admin_and_later_ones_users_unless_asked(
    app_client: AppFactory, encurta: Encurta, tmp_path: Path
) -> None:
    async with app_client() as client:
        first = await encurta(
            "users", "create", "Root@Example.com", "--password-stdin", stdin=PASSWORD + "\n"
        )
        second = await encurta(
            "users", "create", "bob@example.com", "--password-stdin", stdin=PASSWORD
        )
        third = await encurta(
            "users", "create", "eve@example.com", "--admin", "--password-stdin", stdin=PASSWORD
        )
        listed = await encurta("users", "list")

        assert [first.status, second.status, third.status, listed.status] == [0, 0, 0, 0]
        assert "created Root@example.com: admin" in first.out, first
        assert "created bob@example.com: user" in second.out, second
        assert "created eve@example.com: admin" in third.out, third
        lines = listed.out.splitlines()
        assert lines[0].split() == ["EMAIL", "ROLE", "ACTIVE", "CREATED"], listed
        rows = [line.split()[:3] for line in lines[1:]]
        assert rows == [
            ["Root@example.com", "admin", "yes"],
            ["bob@example.com", "user", "yes"],
            ["eve@example.com", "admin", "yes"],
        ]
        assert all(line.endswith("UTC") for line in lines[1:])
        # The trailing newline of stdin is not part of the password; the email folds.
        assert (await login(client, "root@EXAMPLE.com"))["access_token"]
        never_shows_a_secret(first, second, third, listed)
    assert not (tmp_path / "data" / "postgres").exists()  # a URL: nothing embedded


async def test_bad_input_is_refused_with_one_line_and_exit_1_or_2(encurta: Encurta) -> None:
    common = await encurta(
        "users", "create", "a@example.com", "--password-stdin", stdin="password123"
    )
    short = await encurta("users", "create", "a@example.com", "--password-stdin", stdin="short")
    two_lines = await encurta(
        "users", "create", "a@example.com", "--password-stdin", stdin=f"{PASSWORD}\nmore\n"
    )
    bad_email = await encurta("users", "create", "not-an-email", "--password-stdin", stdin=PASSWORD)
    no_stdin_flag = await encurta("users", "create", "a@example.com", stdin=PASSWORD)
    no_action = await encurta("users")
    unknown_action = await encurta("users", "promote", "a@example.com")
    no_email = await encurta("users", "disable")
    unknown = await encurta("users", "disable", "nobody@example.com")
    made = await encurta("users", "create", "a@example.com", "--password-stdin", stdin=PASSWORD)
    again = await encurta("users", "create", "A@example.com", "--password-stdin", stdin=PASSWORD)

    assert common.status == 1 and "password: This password is among the most common" in common.err
    assert short.status == 1 and "password: Use at least 8 characters" in short.err
    assert two_lines.status == 1 and "one line" in two_lines.err
    assert bad_email.status == 1 and "email:" in bad_email.err
    assert no_stdin_flag.status == 2 and "--password-stdin" in no_stdin_flag.err
    assert (no_action.status, unknown_action.status, no_email.status) == (2, 2, 2)
    assert unknown.status == 1 and "no account has the email nobody@example.com" in unknown.err
    assert made.status == 0, made
    assert again.status == 1 and "already exists" in again.err
    for ran in (common, short, two_lines, bad_email, unknown, again):
        assert len(ran.err.strip().splitlines()) == 1, ran
        assert ran.err.startswith("encurta users "), ran
    never_shows_a_secret(common, short, two_lines, bad_email, no_stdin_flag, made, again)
    listed = await encurta("users", "list")
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["a@example.com"]


async def test_disable_ends_the_sessions_and_never_leaves_no_active_admin(
    app_client: AppFactory, encurta: Encurta
) -> None:
    async with app_client() as client:
        await register(client, "admin@example.com")
        await register(client, "bob@example.com")
        session = await login(client, "bob@example.com")

        last_admin = await encurta("users", "disable", "admin@example.com")
        disabled = await encurta("users", "disable", "BOB@example.com")

        assert last_admin.status == 1, last_admin
        assert "last active admin" in last_admin.err
        assert (await login(client, "admin@example.com"))["access_token"]
        assert disabled.status == 0 and "disabled bob@example.com" in disabled.out, disabled
        assert_problem(await refresh(client, session["refresh_token"]), 401)
        refused = await client.post(
            "/api/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
        )
        assert_problem(refused, 403)
        listed = await encurta("users", "list")
        assert listed.out.splitlines()[2].split()[:3] == ["bob@example.com", "user", "no"]

        enabled = await encurta("users", "enable", "bob@example.com")
        assert enabled.status == 0, enabled
        assert (await login(client, "bob@example.com"))["access_token"]


async def test_set_password_validates_stores_and_ends_every_session(
    app_client: AppFactory, encurta: Encurta
) -> None:
    async with app_client() as client:
        await register(client)
        session = await login(client)

        weak = await encurta(
            "users", "set-password", "ana@example.com", "--password-stdin", stdin="12345678"
        )
        nobody = await encurta(
            "users", "set-password", "x@example.com", "--password-stdin", stdin=NEW_PASSWORD
        )
        assert weak.status == 1 and "password:" in weak.err, weak
        assert nobody.status == 1 and "no account" in nobody.err, nobody
        assert (await refresh(client, session["refresh_token"])).status_code == 200

        session = await login(client)
        changed = await encurta(
            "users", "set-password", "ana@example.com", "--password-stdin", stdin=NEW_PASSWORD
        )

        assert changed.status == 0, changed
        assert_problem(await refresh(client, session["refresh_token"]), 401)
        old = await client.post(
            "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
        )
        assert_problem(old, 401)
        access = (await login(client, password=NEW_PASSWORD))["access_token"]
        assert (await client.get("/api/auth/me", headers=bearer(access))).status_code == 200
        never_shows_a_secret(weak, nobody, changed)


async def test_an_unreachable_database_is_one_line_and_exit_1(
    encurta: Encurta, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "ENCURTA_AUTH__DATABASE_URL", "postgresql+asyncpg://encurta:s3cret@127.0.0.1:1/encurta"
    )
    ran = await encurta("users", "list")

    assert ran.status == 1, ran
    assert "auth database could not be used" in ran.err
    assert "s3cret" not in ran.err


# The console script beside a live `encurta serve`, closed to registration.


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-users-")
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def console(data_dir: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENCURTA), "users", *argv],
        env={**encurta_env(data_dir), "ENCURTA_AUTH__REGISTRATION": "closed"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_console_script_administers_a_live_instance(data_dir: Path) -> None:
    server = Server(data_dir, ENCURTA_AUTH__REGISTRATION="closed")
    try:
        server.wait_ready()
        account = {"email": "root@example.com", "password": PASSWORD}
        closed = httpx.post(f"{server.url}/api/auth/register", json=account)
        assert closed.status_code == 403
        assert "encurta users create" in closed.json()["detail"]

        created = console(
            data_dir, "create", "root@example.com", "--password-stdin", stdin=PASSWORD
        )
        assert created.returncode == 0, created.stderr
        assert "root@example.com: admin" in created.stdout
        token = httpx.post(f"{server.url}/api/auth/login", json=account).json()["access_token"]
        user = {"email": "bob@example.com", "password": PASSWORD}
        made = httpx.post(f"{server.url}/api/admin/users", json=user, headers=bearer(token))
        assert made.status_code == 201, made.text
        session = httpx.post(f"{server.url}/api/auth/login", json=user).json()

        disabled = console(data_dir, "disable", "bob@example.com")
        listed = console(data_dir, "list")

        assert disabled.returncode == 0, disabled.stderr
        refreshed = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert refreshed.status_code == 401
        assert httpx.post(f"{server.url}/api/auth/login", json=user).status_code == 403
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[:3] for line in listed.stdout.splitlines()[1:]] == [
            ["root@example.com", "admin", "yes"],
            ["bob@example.com", "user", "no"],
        ]
        # The commands joined serve's embedded server and left it running.
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        for ran in (created, disabled, listed):
            assert PASSWORD not in ran.stdout + ran.stderr and "$argon2" not in ran.stdout
    finally:
        output = server.interrupt()
    assert PASSWORD not in output
