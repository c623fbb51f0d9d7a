"""The start-up's migration check: the version tables against the revision files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.registry import NAMES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("module", NAMES)
def test_heads_read_from_the_files_are_alembics_heads(module: str) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(module, "unused"))

    assert migrations.heads(module) == frozenset(script.get_heads())


def test_a_revision_file_that_does_not_say_its_revision_plainly_leaves_it_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "demo" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001.py").write_text('revision = "d1"\ndown_revision = None\n')
    (versions / "0002.py").write_text('revision: str = "d2"\ndown_revision = ("d1",)\n')
    monkeypatch.setattr(migrations, "migrations_root", lambda: tmp_path)
    assert migrations.heads("demo") == {"d2"}

    (versions / "0003.py").write_text('revision = "d" + "3"\ndown_revision = "d2"\n')
    assert migrations.heads("demo") is None


def test_migrated_databases_are_not_behind(database_urls: dict[str, str]) -> None:
    assert migrations.behind(database_urls) == []


def test_a_new_database_and_one_that_cannot_be_reached_are_behind(
    embedded_postgres: EmbeddedPostgres, database_urls: dict[str, str]
) -> None:
    fresh = asyncio.run(embedded_postgres.provision(["migrationtest"]))["migrationtest"]
    unreachable = database_urls["auth"].replace(f":{embedded_postgres.port}/", ":1/")

    behind = migrations.behind(
        {"auth": unreachable, "shortener": fresh, "analytics": database_urls["analytics"]}
    )

    assert behind == ["auth", "shortener"]


def test_a_start_up_at_head_does_not_import_alembic(database_urls: dict[str, str]) -> None:
    """Alembic and what it brings (mako, pygments) cost a start-up ~0.25 s to import."""
    script = (
        "import json, sys\n"
        "import app.cli\n"
        "from app.kernel import migrations\n"
        "print(migrations.behind(json.loads(sys.argv[1])), 'alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(database_urls)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert result.stdout.split() == ["[]", "False"], result.stderr


@pytest.mark.parametrize("module", ["auth", "shortener"])
def test_replicas_starting_together_migrate_once(
    embedded_postgres: EmbeddedPostgres, module: str
) -> None:
    """Two processes migrate one new database at the same moment, as replicas started
    together do: one builds it, the other waits for it (an advisory lock) and finds it
    built, instead of failing on tables the first is still creating."""
    fresh = asyncio.run(embedded_postgres.provision([f"race{module}"]))[f"race{module}"]
    script = (
        "import sys\n"
        "from app.kernel import migrations\n"
        "sys.stdin.readline()\n"  # both start migrating when told, not as they come up
        "migrations.upgrade(sys.argv[1], sys.argv[2])\n"
    )
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", script, module, fresh],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for replica in replicas:
        assert replica.stdin is not None
        replica.stdin.write("go\n")
        replica.stdin.flush()
    finished = [replica.communicate(timeout=120) for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0], finished
    assert migrations.behind({module: fresh}) == []
