"""The embedded server: one database and one role per module, and nothing shared."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.config import ALL_MODULES
from app.kernel.embedded import EmbeddedPostgres, EmbeddedPostgresError, _RunAs
from tests.conftest import asyncpg_dsn, traversable_tmp


def other_database(url: str, database: str) -> str:
    return asyncpg_dsn(url).rsplit("/", 1)[0] + f"/{database}"


@pytest.mark.parametrize(
    ("role_of", "database_of"),
    [pair for pair in itertools.permutations(ALL_MODULES, 2)],
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
            superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1",
                                            row["current_user"])
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


def test_a_server_left_running_by_a_killed_process_is_adopted(scratch: Path) -> None:
    crashed = EmbeddedPostgres(scratch / "pg", durable=False)
    crashed.start()  # and never stopped, as after SIGKILL
    try:
        with EmbeddedPostgres(scratch / "pg", durable=False) as adopter:
            assert adopter.port == crashed.port
            assert asyncio.run(adopter.provision(["auth"]))
    finally:
        crashed.stop()


def test_as_root_a_data_dir_nobody_can_enter_is_refused_with_advice(scratch: Path) -> None:
    """As root the server runs as 'nobody', who must be able to walk down to the data."""
    private = scratch / "private"
    private.mkdir(mode=0o700)
    (private / "pg").mkdir()
    as_nobody = _RunAs(user="nobody", uid=65534, gid=65534)

    with pytest.raises(EmbeddedPostgresError, match="ENCURTA_DATA_DIR"):
        as_nobody.check_traversable(private / "pg")
    as_nobody.check_traversable(scratch)  # world-executable: fine
