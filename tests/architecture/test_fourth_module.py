"""Adding a module is its package, its migrations and one line in the registry.

A copy of the tree gets a throwaway fourth module, `notes`: its own database (provisioned by
the embedded server like the others), its own Alembic history, a route that checks access
tokens with the gate it was built with (against its own copy of the access list), and an
inbox subscription to the shortener's `link_created`. The only change to existing code is
the registry's line of names. Then the import contracts hold on the copy, `encurta modules`
shows the new module's canvas, and `encurta serve` runs all four: a link created in the
shortener reaches `notes` through the bus and its own inbox. The real tree is never touched.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.registry import NAMES
from tests.architecture.test_boundaries import ROOT, contracts, lint_imports
from tests.conftest import traversable_tmp
from tests.test_serve import PASSWORD, free_port

pytestmark = pytest.mark.integration

NOTES_FACE = '''\
"""A throwaway fourth module: the links it has heard of, through its own inbox."""

from collections.abc import Sequence

from sqlalchemy import Column, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.bus.inbox import inbox_tables
from app.contracts.shortener import LinkCreated
from app.kernel.access import access_tables
from app.kernel.settings import DatabaseSettings
from app.wiring import Module, ModuleContext, ModuleSpec

metadata = MetaData()
heard = Table("heard_links", metadata, Column("code", Text, primary_key=True))
inbox_tables(metadata)
access_tables(metadata)  # its copy of who may call it, which its gate reads


class NotesSettings(DatabaseSettings):
    pass


async def on_link_created(conn: AsyncConnection, events: Sequence[LinkCreated]) -> None:
    rows = [{"code": event.code} for event in events]
    await conn.execute(insert(heard).values(rows).on_conflict_do_nothing())


def create_module(settings: NotesSettings, context: ModuleContext) -> Module:
    async def heard_links(request: Request) -> Response:
        await context.gate.authenticate(request)
        async with context.engine.connect() as conn:
            codes = (await conn.execute(select(heard.c.code))).scalars().all()
        return JSONResponse(sorted(codes))

    module = Module(
        name="notes",
        engine=context.engine,
        metadata=metadata,
        routes=[Route("/api/notes/heard", heard_links)],
    )
    module.subscribe(LinkCreated, on_link_created)
    module.keep_access_list()
    return module


MODULE = ModuleSpec(name="notes", settings=NotesSettings, create=create_module)
'''

NOTES_ENV = """\
from app.kernel.migrations import run_env
from app.modules.notes import metadata

run_env(metadata, "notes")
"""

NOTES_MIGRATION = '''\
"""heard links and the inbox"""

from alembic import op

revision = "notes_0001"
down_revision = None


def upgrade() -> None:
    from app.modules.notes import metadata

    metadata.create_all(op.get_bind())


def downgrade() -> None:
    from app.modules.notes import metadata

    metadata.drop_all(op.get_bind())
'''


def add_the_notes_module(tree: Path) -> list[str]:
    """Plants the package and its migrations, adds its name to the registry; returns the
    lines of existing code that changed."""
    package = tree / "app" / "modules" / "notes"
    package.mkdir()
    (package / "__init__.py").write_text(NOTES_FACE)
    history = tree / "migrations" / "notes"
    (history / "versions").mkdir(parents=True)
    (history / "env.py").write_text(NOTES_ENV)
    shutil.copy2(tree / "migrations" / "auth" / "script.py.mako", history / "script.py.mako")
    (history / "versions" / "0001_notes.py").write_text(NOTES_MIGRATION)

    registry = tree / "app" / "registry.py"
    before = registry.read_text().splitlines()
    listed = ", ".join(f'"{name}"' for name in NAMES)
    old = f"NAMES: tuple[str, ...] = ({listed})"
    assert old in before, "the registry's line of names changed: update this test"
    after = [line.replace(old, old.replace(")", ', "notes")')) for line in before]
    registry.write_text("\n".join(after) + "\n")
    return [
        line
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-fourth-")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "app", root / "app", ignore=ignore)
    shutil.copytree(ROOT / "migrations", root / "migrations", ignore=ignore)
    shutil.copy2(ROOT / "importlinter.ini", root / "importlinter.ini")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def encurta(tree: Path, *args: str, **environment: str) -> subprocess.Popen[str]:
    """The copy's `encurta`: `python -m` puts the working directory first on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env.update(
        PYTHONPATH=str(tree),
        PYTHONDONTWRITEBYTECODE="1",
        ENCURTA_DATA_DIR=str(tree / "data"),
        ENCURTA_EMBEDDED__DURABLE="false",
        ENCURTA_AUTH__ARGON2__TIME_COST="1",
        ENCURTA_AUTH__ARGON2__MEMORY_COST_KIB="64",
        ENCURTA_AUTH__ARGON2__PARALLELISM="1",
        **environment,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_fourth_module_is_its_package_its_migrations_and_one_line(tree: Path) -> None:
    changed = add_the_notes_module(tree)
    assert len([line for line in changed if line.startswith("+")]) == 1, changed
    assert len([line for line in changed if line.startswith("-")]) == 1, changed

    linted = lint_imports(tree)
    output = linted.stdout + linted.stderr
    assert linted.returncode == 0, output
    assert f"Contracts: {len(contracts())} kept, 0 broken." in output, output

    described = encurta(tree, "modules")
    canvas, _ = described.communicate(timeout=120)
    assert described.returncode == 0, canvas
    notes = canvas[canvas.index("\nnotes\n") :]
    assert "route      GET,HEAD   /api/notes/heard" in notes, canvas
    assert "table      heard_links" in notes, canvas
    assert "consumes   shortener.link_created.v1" in notes, canvas

    port = free_port()
    server = encurta(tree, "serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_until_ready(client, server)
            assert client.get("/api/notes/heard").status_code == 401

            account = {"email": "ana@example.com", "password": PASSWORD}
            assert client.post("/api/auth/register", json=account).status_code == 201
            token = client.post("/api/auth/login", json=account).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            created = client.post(
                "/api/links", json={"url": "https://example.com/"}, headers=headers
            )
            assert created.status_code == 201, created.text
            code = created.json()["code"]

            # The event crosses the bus into the notes database; wait for it, with a guard.
            deadline = time.monotonic() + 60
            heard: list[str] = []
            while code not in heard and time.monotonic() < deadline:
                response = client.get("/api/notes/heard", headers=headers)
                assert response.status_code == 200, response.text
                heard = response.json()
                time.sleep(0.1)
            assert heard == [code]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "migrating notes" in output, output


def wait_until_ready(client: httpx.Client, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120  # a guard: the embedded server, four migrations
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"encurta exited early:\n{server.communicate()[0]}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("encurta did not become ready")
