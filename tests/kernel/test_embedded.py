"""The embedded server: one database and one role per module, and nothing shared."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.kernel.embedded import EmbeddedPostgres, EmbeddedPostgresError, _RunAs, _scram_matches
from app.registry import NAMES
from tests.conftest import asyncpg_dsn, traversable_tmp

pytestmark = pytest.mark.integration

_SCRAM_OF_PENCIL = (
    "SCRAM-SHA-256$4096:KNhwKW8C36eXGcNn4r1+kg==$JnSx9iJBtAKkmVD0TNG0qreebNS6n/drwIEoct4EKhw="
    ":8R7RWcw6LWoB4Z6I8V3ecl0CuME8oJYU9MSA5C8fUdY="
)


def other_database(url: str, database: str) -> str:
    return asyncpg_dsn(url).rsplit("/", 1)[0] + f"/{database}"


@pytest.mark.parametrize(
    ("role_of", "database_of"),
    [pair for pair in itertools.permutations(NAMES, 2)],
)
async def test_a_module_role_is_refused_by_another_modules_database(
    database_urls: dict[str, str], role_of: str, database_of: str
) -> None:
    url = other_database(database_urls[role_of], f"encurta_{database_of}")

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(url)


@pytest.mark.parametrize("database", ["postgres", "template1"])
async def test_a_module_role_is_refused_by_the_shared_databases(
    database_urls: dict[str, str], database: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(other_database(database_urls["auth"], database))


async def test_each_module_connects_to_its_own_database_as_its_own_role(
    database_urls: dict[str, str],
) -> None:
    for module, url in database_urls.items():
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            row = await conn.fetchrow("SELECT current_user, current_database()")
            superuser = await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1", row["current_user"]
            )
        finally:
            await conn.close()
        assert tuple(row) == (f"encurta_{module}", f"encurta_{module}")
        assert superuser is False


async def test_a_wrong_password_is_refused(database_urls: dict[str, str]) -> None:
    dsn = asyncpg_dsn(database_urls["auth"])
    user, rest = dsn.removeprefix("postgresql://").split(":", 1)
    wrong = f"postgresql://{user}:wrong-password@{rest.split('@', 1)[1]}"

    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


@pytest.fixture
def scratch() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-scratch-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_restart_keeps_the_data_and_the_passwords(scratch: Path) -> None:
    async def write(url: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        finally:
            await conn.close()

    async def read(url: str) -> str:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            value: str = await conn.fetchval("SELECT v FROM kept")
            return value
        finally:
            await conn.close()

    with EmbeddedPostgres(scratch / "pg", durable=False) as server:
        first = asyncio.run(server.provision(["auth"]))
        asyncio.run(write(first["auth"]))
    with EmbeddedPostgres(scratch / "pg", durable=False) as server:
        second = asyncio.run(server.provision(["auth"]))
        assert asyncio.run(read(second["auth"])) == "still here"

    password = lambda url: url.split(":")[2].split("@")[0]  # noqa: E731
    assert password(first["auth"]) == password(second["auth"])
    assert (scratch / "pg" / "credentials.json").stat().st_mode & 0o777 == 0o600


def running(server: EmbeddedPostgres) -> bool:
    return (server.pgdata / "postmaster.pid").exists()


def start_and_get_killed(root: Path) -> int:
    """Start a server from another process and SIGKILL that process, as a crash would:
    the server stays up with nobody owning it. Returns the process's exit code."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from app.kernel.embedded import EmbeddedPostgres\n"
        "EmbeddedPostgres(Path(sys.argv[1]), durable=False).start()\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == "started\n"
        finally:
            process.kill()
    return process.returncode


def test_a_command_never_stops_a_server_it_joined(scratch: Path) -> None:
    with EmbeddedPostgres(scratch / "pg", durable=False) as serving:
        assert serving.started_here and serving.owned
        command = EmbeddedPostgres(scratch / "pg", durable=False, take_orphans=False)
        with command:
            assert command.port == serving.port
            assert not command.started_here and not command.owned
        assert running(serving)
        assert asyncio.run(serving.provision(["auth"]))  # still answers
    assert not running(serving)


def test_an_owner_leaves_a_server_running_while_another_process_uses_it(scratch: Path) -> None:
    """`encurta migrate` starts the server, `serve` joins; migrate ends first."""
    command = EmbeddedPostgres(scratch / "pg", durable=False, take_orphans=False)
    command.start()
    serving = EmbeddedPostgres(scratch / "pg", durable=False)
    serving.start()
    try:
        command.stop()
        assert running(serving)
        assert asyncio.run(serving.provision(["auth"]))
    finally:
        serving.stop()  # its owner gone, serve takes it over, and is the last to leave
    assert not running(serving)


def test_the_last_to_leave_stops_the_server_it_started(scratch: Path) -> None:
    serving = EmbeddedPostgres(scratch / "pg", durable=False)
    serving.start()
    command = EmbeddedPostgres(scratch / "pg", durable=False, take_orphans=False)
    command.start()
    serving.stop()
    assert running(command)  # the command still uses it
    command.stop()
    assert running(command)  # ...and did not start it: it stays up, for a serve to take
    with EmbeddedPostgres(scratch / "pg", durable=False) as next_serve:
        assert not next_serve.started_here and next_serve.owned
    assert not running(next_serve)


def test_a_server_left_by_a_killed_process_is_left_running_by_a_command(scratch: Path) -> None:
    assert start_and_get_killed(scratch / "pg") == -signal.SIGKILL
    command = EmbeddedPostgres(scratch / "pg", durable=False, take_orphans=False)
    with command:
        assert not command.started_here and not command.owned
        assert asyncio.run(command.provision(["auth"]))
    assert running(command)
    with EmbeddedPostgres(scratch / "pg", durable=False) as serving:  # tidy up
        assert serving.owned
    assert not running(serving)


def test_a_server_left_by_a_killed_process_is_taken_over_and_stopped_by_serve(
    scratch: Path,
) -> None:
    assert start_and_get_killed(scratch / "pg") == -signal.SIGKILL
    serving = EmbeddedPostgres(scratch / "pg", durable=False)
    with serving:
        assert not serving.started_here and serving.owned
        assert asyncio.run(serving.provision(["auth"]))
        second = EmbeddedPostgres(scratch / "pg", durable=False)
        with second:  # a second serve on the same data dir: the first still owns it
            assert not second.owned
        assert running(serving)
    assert not running(serving)


def test_the_server_log_is_private_and_holds_no_key_values(scratch: Path) -> None:
    """A unique violation's DETAIL quotes the key (an email); the log keeps it out."""
    email = "ana.private@example.com"

    async def violate(url: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute("CREATE TABLE people (email text UNIQUE)")
            await conn.execute("INSERT INTO people VALUES ($1)", email)
            with pytest.raises(asyncpg.UniqueViolationError) as raised:
                await conn.execute("INSERT INTO people VALUES ($1)", email)
            assert email in str(raised.value.detail)  # the client still gets the detail
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.execute(f"SELECT '{email}' FROM nowhere")  # noqa: S608
        finally:
            await conn.close()

    log_file = scratch / "pg" / "server.log"
    log_file.parent.mkdir()
    log_file.write_text("an old log, once world-readable\n")
    log_file.chmod(0o644)
    with EmbeddedPostgres(scratch / "pg", durable=False) as server:
        asyncio.run(violate(asyncio.run(server.provision(["auth"]))["auth"]))
    text = log_file.read_text()
    assert "duplicate key value violates unique constraint" in text  # errors are logged...
    assert email not in text  # ...without the values, or the statement
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert log_file.stat().st_uid == _RunAs.detect().uid  # the server's user


async def test_provisioning_repairs_a_database_opened_to_public(scratch: Path) -> None:
    with EmbeddedPostgres(scratch / "pg", durable=False) as server:
        urls = await server.provision(["auth", "shortener"])
        superuser = await asyncpg.connect(server.superuser_dsn())
        try:
            await superuser.execute('GRANT CONNECT ON DATABASE "encurta_auth" TO PUBLIC')
        finally:
            await superuser.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(other_database(urls["auth"], "encurta_shortener"))
        await (await asyncpg.connect(other_database(urls["shortener"], "encurta_auth"))).close()

        assert await server.provision(["auth", "shortener"]) == urls

        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(other_database(urls["shortener"], "encurta_auth"))


async def test_provisioning_restores_a_changed_password(scratch: Path) -> None:
    with EmbeddedPostgres(scratch / "pg", durable=False) as server:
        urls = await server.provision(["auth"])
        superuser = await asyncpg.connect(server.superuser_dsn())
        try:
            await superuser.execute("ALTER ROLE encurta_auth PASSWORD 'changed elsewhere'")
        finally:
            await superuser.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(asyncpg_dsn(urls["auth"]))

        assert await server.provision(["auth"]) == urls

        await (await asyncpg.connect(asyncpg_dsn(urls["auth"]))).close()


def test_a_scram_verifier_matches_its_password_only() -> None:
    # Made by PostgreSQL 18 for the password "pencil" (ALTER ROLE ... PASSWORD 'pencil').
    verifier = _SCRAM_OF_PENCIL

    assert _scram_matches(verifier, "pencil")
    assert not _scram_matches(verifier, "pencil2")
    assert not _scram_matches(None, "pencil")
    assert not _scram_matches("md5d41d8cd98f00b204e9800998ecf8427e", "pencil")


def test_as_root_a_data_dir_nobody_can_enter_is_refused_with_advice(scratch: Path) -> None:
    """As root the server runs as 'nobody', who must be able to walk down to the data."""
    private = scratch / "private"
    private.mkdir(mode=0o700)
    (private / "pg").mkdir()
    as_nobody = _RunAs(user="nobody", uid=65534, gid=65534)

    with pytest.raises(EmbeddedPostgresError, match="ENCURTA_DATA_DIR"):
        as_nobody.check_traversable(private / "pg")
    as_nobody.check_traversable(scratch)  # world-executable: fine
