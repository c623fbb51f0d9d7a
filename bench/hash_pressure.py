"""Does password hashing starve the redirect path? Redirect latency idle vs under hashing.

    .venv/bin/python bench/hash_pressure.py [--pools 1,2,4] [--requests 200] [--pin]

For each size of the argon2 pool (`ENCURTA_AUTH__ARGON2__MAX_CONCURRENT`) a real
`encurta serve` starts on a fresh data dir, with the production argon2id cost (time cost 3,
64 MiB, parallelism 4) and the registration throttle raised out of the way. One user
registers, logs in and creates a link; then `GET /{code}` (a browser's user agent, the
redirect not followed, one keep-alive connection) is timed sequentially, first idle, then
while a child process keeps 16 registrations in flight (distinct emails, valid passwords,
each worker registering again as soon as its last answer arrives).

Printed per pool size: median and p90 of the redirect idle and under hashing, their ratio,
and the registrations per second completed while the redirects were timed.

By default nothing is pinned: the server (and its embedded PostgreSQL) has the machine's
cores, as deployed, and shares them with this client. `--pin` runs the server on core 0
and this script and the load on core 1 (`taskset`), which makes the server a one-core one.
"""

from __future__ import annotations

import argparse
import asyncio
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ENCURTA = Path(sys.executable).parent / "encurta"
PASSWORD = "a long and unusual bench passphrase"  # noqa: S105 - the bench users' own
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CONCURRENT_REGISTRATIONS = 16


@dataclass
class Figures:
    pool: int
    idle: list[float]
    loaded: list[float]
    registrations_per_second: float
    registration_errors: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(core: int | None, argv: list[str]) -> list[str]:
    return argv if core is None else ["taskset", "-c", str(core), *argv]


def server_env(data_dir: Path, pool: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env.update(
        ENCURTA_DATA_DIR=str(data_dir),
        ENCURTA_LOG_LEVEL="warning",
        # The production cost, stated so that nothing inherited lowers it.
        ENCURTA_AUTH__ARGON2__TIME_COST="3",
        ENCURTA_AUTH__ARGON2__MEMORY_COST_KIB="65536",
        ENCURTA_AUTH__ARGON2__PARALLELISM="4",
        ENCURTA_AUTH__ARGON2__MAX_CONCURRENT=str(pool),
        ENCURTA_AUTH__THROTTLE__MAX_REGISTRATIONS_PER_IP="100000",
    )
    return env


@contextmanager
def server(data_dir: Path, pool: int, core: int | None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        pinned(core, [str(ENCURTA), "serve", "--port", str(port)]),
        env=server_env(data_dir, pool),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                output = process.stderr.read() if process.stderr else ""
                raise SystemExit(f"encurta serve exited before it was ready:\n{output}")
            if time.monotonic() > deadline:
                raise SystemExit("encurta serve did not answer /readyz in 90 s")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def make_link(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        email = f"owner-{uuid.uuid4().hex[:12]}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        client.post("/api/auth/register", json=credentials).raise_for_status()
        login = client.post("/api/auth/login", json=credentials)
        login.raise_for_status()
        token = login.json()["access_token"]
        created = client.post(
            "/api/links",
            json={"url": "https://example.com/hash-pressure"},
            headers={"Authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
        return str(created.json()["code"])


def time_redirects(client: httpx.Client, code: str, count: int, budget: float) -> list[float]:
    """Sequential GET /{code}, in ms; stops at `count` or after `budget` seconds."""
    samples: list[float] = []
    deadline = time.monotonic() + budget
    while len(samples) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        response = client.get(f"/{code}")
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code not in (301, 302, 303, 307, 308):
            raise SystemExit(f"GET /{code} answered {response.status_code}: {response.text}")
    return samples


@contextmanager
def registration_load(url: str, core: int | None) -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--load", url]
    process = subprocess.Popen(
        pinned(core, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)


def stop_load(process: subprocess.Popen[str]) -> tuple[list[float], int]:
    """SIGTERM the load; its completion times (CLOCK_MONOTONIC) and its failures."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    if process.returncode != 0:
        raise SystemExit(f"the registration load failed:\n{err}")
    report = json.loads(out.splitlines()[-1])
    return list(report["done"]), int(report["errors"])


def load_child(url: str) -> None:
    """16 workers registering new accounts back to back until SIGTERM; prints a JSON line."""
    done: list[float] = []
    failures: list[str] = []

    async def worker(client: httpx.AsyncClient, n: int, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            email = f"load-{n}-{i}-{uuid.uuid4().hex[:8]}@example.com"
            try:
                response = await client.post(
                    "/api/auth/register", json={"email": email, "password": PASSWORD}
                )
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if response.status_code == 201:
                done.append(time.monotonic())
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        limits = httpx.Limits(max_connections=CONCURRENT_REGISTRATIONS)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            tasks = [
                asyncio.create_task(worker(client, n, stop))
                for n in range(CONCURRENT_REGISTRATIONS)
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    if failures:
        print(f"{len(failures)} failed registrations, first: {failures[0]}", file=sys.stderr)
    print(json.dumps({"done": done, "errors": len(failures)}))


def measure(pool: int, root: Path, args: argparse.Namespace) -> Figures:
    server_core = 0 if args.pin else None
    client_core = 1 if args.pin else None
    with server(root / f"data-{pool}", pool, server_core) as url:
        code = make_link(url)
        headers = {"User-Agent": BROWSER}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            time_redirects(client, code, 30, 10)  # warm-up: connection, caches
            idle = time_redirects(client, code, args.requests, args.budget)
            with registration_load(url, client_core) as load:
                time.sleep(args.ramp)  # the pool busy and its queue full
                began = time.monotonic()
                loaded = time_redirects(client, code, args.requests, args.budget)
                ended = time.monotonic()
                done, errors = stop_load(load)
    in_window = sum(began <= t <= ended for t in done)
    return Figures(pool, idle, loaded, in_window / (ended - began), errors)


def quantile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="1,2,4", help="MAX_CONCURRENT values to run")
    parser.add_argument("--requests", type=int, default=200, help="redirects per phase")
    parser.add_argument("--budget", type=float, default=20, help="max seconds per phase")
    parser.add_argument("--ramp", type=float, default=3, help="seconds of load before timing")
    parser.add_argument("--pin", action="store_true", help="server on core 0, client on 1")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_child(args.load)
        return
    if args.pin:
        if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
            raise SystemExit("--pin needs taskset and two cores")
        os.sched_setaffinity(0, {1})

    pools = [int(p) for p in args.pools.split(",")]
    root = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
    root.chmod(0o755)  # the embedded PostgreSQL's user must get in
    results: list[Figures] = []
    try:
        for pool in pools:
            figures = measure(pool, root, args)
            results.append(figures)
            print(
                f"MAX_CONCURRENT={pool}: idle median {statistics.median(figures.idle):.1f} ms, "
                f"under hashing {statistics.median(figures.loaded):.1f} ms "
                f"({len(figures.loaded)} redirects), "
                f"{figures.registrations_per_second:.2f} registrations/s",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    placement = (
        "server on core 0, client and load on core 1 (taskset)"
        if args.pin
        else "nothing pinned: server, PostgreSQL and client share all cores"
    )
    print(
        f"\n{os.cpu_count()} cores, {placement}; argon2id t=3, 64 MiB, p=4; "
        f"{CONCURRENT_REGISTRATIONS} registrations in flight; "
        f"load average (1 min) {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'MAX_CONCURRENT':>14} {'idle p50':>9} {'idle p90':>9} {'load p50':>9} "
        f"{'load p90':>9} {'p50 ratio':>9} {'p90 ratio':>9} {'reg/s':>6} {'n idle/load':>12}"
    )
    for f in results:
        idle50, idle90 = statistics.median(f.idle), quantile(f.idle, 0.9)
        load50, load90 = statistics.median(f.loaded), quantile(f.loaded, 0.9)
        print(
            f"{f.pool:>14} {idle50:>6.1f} ms {idle90:>6.1f} ms {load50:>6.1f} ms "
            f"{load90:>6.1f} ms {load50 / idle50:>9.1f} {load90 / idle90:>9.1f} "
            f"{f.registrations_per_second:>6.2f} {len(f.idle):>5}/{len(f.loaded)}"
        )
        if f.registration_errors:
            print(f"  ({f.registration_errors} registrations failed at MAX_CONCURRENT={f.pool})")


if __name__ == "__main__":
    main()
