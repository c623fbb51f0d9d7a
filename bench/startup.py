"""How long `encurta serve` takes to answer /readyz, and where that time goes.

    .venv/bin/python bench/startup.py [--runs 5] [--busy]

Two measures, each on a new data dir (first start: initdb, roles, migrations) and then on
the same one again (a restart, the figure the README promises):

- end to end: the real `encurta serve` process, from spawn to the first /readyz 200;
- breakdown: a child process that runs the same steps as `encurta serve`, one at a time,
  and times each: the interpreter, the imports, the embedded server's start (or adoption),
  provisioning, the migrations check, building the app, and uvicorn's start up to the
  first /readyz answer. The steps add up to about the end-to-end figure.

`--busy` keeps one of the machine's cores at 100 % for the whole run (a shell loop), to
show the figures on a loaded machine. `--bytecode` lets Python cache compiled bytecode (in
a temporary PYTHONPYCACHEPREFIX, even where PYTHONDONTWRITEBYTECODE is set), as an install
with compiled bytecode has it; without it, a start compiles every imported source again
when the environment forbids writing bytecode and none was compiled at install. One
unmeasured start comes first (page cache, bytecode). Prints medians.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENCURTA = Path(sys.executable).parent / "encurta"
PHASES = [
    ("interpreter", "Python start, up to the first line"),
    ("imports", "import app.cli (settings, modules, kernel)"),
    ("embedded", "embedded PostgreSQL: start, or adopt"),
    ("provision", "roles and databases (or confirm them)"),
    ("migrations", "migrations: check, upgrade if behind"),
    ("app", "create_app: modules, engines, OpenAPI"),
    ("serving", "uvicorn start and lifespan, to /readyz 200"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PYCACHE: Path | None = None  # set by --bytecode


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["ENCURTA_DATA_DIR"] = str(data_dir)
    env["ENCURTA_LOG_LEVEL"] = "warning"
    return env


def ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def end_to_end(data_dir: Path) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(ENCURTA), "serve", "--port", str(port)],
        env=clean_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not ready(port):
            if process.poll() is not None:
                output = process.stderr.read() if process.stderr else ""
                raise SystemExit(f"encurta serve exited before it was ready:\n{output}")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def breakdown(data_dir: Path) -> dict[str, float]:
    env = clean_env(data_dir)
    env["BENCH_SPAWNED_AT"] = repr(time.monotonic())  # CLOCK_MONOTONIC: system-wide
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the breakdown child failed:\n{result.stderr}")
    phases: dict[str, float] = json.loads(result.stdout.splitlines()[-1])
    return phases


def child(port: int) -> None:
    """`encurta serve`'s steps, timed one by one (run by `breakdown` in a fresh process)."""
    marks = [float(os.environ["BENCH_SPAWNED_AT"]), time.monotonic()]
    import asyncio

    import app.cli as cli

    marks.append(time.monotonic())
    import uvicorn

    from app.config import Settings
    from app.kernel.embedded import EmbeddedPostgres

    settings = Settings()
    embedded = EmbeddedPostgres(
        settings.data_dir / "postgres", port=settings.embedded.port, durable=True
    )
    embedded.start()
    try:
        marks.append(time.monotonic())
        urls = asyncio.run(embedded.provision(list(settings.modules)))
        marks.append(time.monotonic())
        cli.migrate_all(settings.modules, urls)
        marks.append(time.monotonic())
        app = cli.create_app(settings, urls)
        marks.append(time.monotonic())
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )

        async def first_ready() -> None:
            while not await asyncio.to_thread(ready, port):
                await asyncio.sleep(0.01)
            marks.append(time.monotonic())
            server.should_exit = True

        async def main() -> None:
            await asyncio.gather(server.serve(), first_ready())

        asyncio.run(main())
    finally:
        embedded.stop()
    steps = zip(PHASES, itertools.pairwise(marks), strict=True)
    print(json.dumps({name: end - begin for (name, _), (begin, end) in steps}))


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    loop = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        yield
    finally:
        loop.kill()
        loop.wait()


def median(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--bytecode", action="store_true", help="let Python cache bytecode")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    global PYCACHE  # one setting for every child of this run
    if args.bytecode:
        PYCACHE = Path(tempfile.mkdtemp(prefix="encurta-bench-pycache-"))
    first: list[float] = []
    again: list[float] = []
    parts_first: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    parts_again: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    with busy_core(args.busy):
        warm_up = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
        warm_up.chmod(0o755)
        breakdown(warm_up / "steps")
        end_to_end(warm_up / "e2e")
        shutil.rmtree(warm_up, ignore_errors=True)
        for _ in range(args.runs):
            root = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
            root.chmod(0o755)
            try:
                first.append(end_to_end(root / "e2e"))
                again.append(end_to_end(root / "e2e"))
                for parts in (parts_first, parts_again):
                    for name, seconds in breakdown(root / "steps").items():
                        parts[name].append(seconds)
            finally:
                shutil.rmtree(root, ignore_errors=True)
    if PYCACHE is not None:
        shutil.rmtree(PYCACHE, ignore_errors=True)
    load = os.getloadavg()[0]
    print(
        f"runs: {args.runs}, one core kept busy: {args.busy}, --bytecode: {args.bytecode}, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}, "
        f"load average (1 min) at the end: {load:.2f}"
    )
    print(f"end to end, first start (initdb, roles, migrations): median {median(first)}")
    print(f"end to end, second start (same data dir):            median {median(again)}")
    print(f"{'breakdown (medians)':<46} {'first':>7} {'again':>7}")
    for name, what in PHASES:
        print(f"  {name:<11} {what:<32} {median(parts_first[name])} {median(parts_again[name])}")
    total_first = sum(statistics.median(v) for v in parts_first.values())
    total_again = sum(statistics.median(v) for v in parts_again.values())
    print(f"  {'sum':<44} {total_first:5.2f} s {total_again:5.2f} s")


if __name__ == "__main__":
    main()
