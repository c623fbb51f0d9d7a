"""The database every benchmark starts: an embedded PostgreSQL with fsync on (as deployed,
unless a bench only reads), in a temporary directory, with a migrated database per module;
gone afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from bench.support.serving import BIN


@dataclass(frozen=True)
class Databases:
    root: Path  # the temporary directory: the server's data, and room for the bench's files
    server: EmbeddedPostgres
    urls: dict[str, str]  # module name -> its database URL

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server's processes have used so far: the
        postmaster and every backend alive now (backends of a pool live as long as it)."""
        pid = int((self.server.pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        total = 0.0
        for process in [postmaster, *postmaster.children()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def migrated(self, name: str, module: str) -> str:
        """One more database, `name`, at `module`'s head; its URL."""
        url = asyncio.run(self.server.provision([name]))[name]
        migrations.upgrade(module, url)
        return url


@contextmanager
def databases(modules: Sequence[str], durable: bool = True) -> Iterator[Databases]:
    root = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
    root.chmod(0o755)  # the embedded server runs as another user: it must traverse this
    server = EmbeddedPostgres(root / "postgres", durable=durable)
    server.start()
    try:
        urls = asyncio.run(server.provision(list(modules)))
        for module, url in urls.items():
            migrations.upgrade(module, url)
        yield Databases(root, server, urls)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def reconcile(env: Mapping[str, str]) -> str:
    """What `encurta reconcile` says, pipeline drained, with its exit status."""
    done = subprocess.run(
        [str(BIN / "encurta"), "reconcile", "--wait", "120"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return f"encurta reconcile (exit {done.returncode}): {(done.stdout + done.stderr).strip()}"
