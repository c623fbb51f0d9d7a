"""A server under test: started pinned to core 0, handed out once it redirects, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.bare_app import LINKS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CODE = next(iter(LINKS))  # the one link every server under test answers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def asyncpg_dsn(url: str) -> str:
    """asyncpg's form of a SQLAlchemy database URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextmanager
def server(
    argv: list[str], port: int, env: Mapping[str, str], pids: list[int] | None = None
) -> Iterator[str]:
    """The server pinned to core 0, once it redirects; its pid is appended to `pids`."""
    process = subprocess.Popen(
        ["taskset", "-c", "0", *argv],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(process.pid)  # taskset execs the server: one process, one pid
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/{CODE}", timeout=1).status_code == 302:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{argv} did not answer")
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
