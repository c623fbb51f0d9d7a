"""How fast `encurta import` stores a million links, and that its memory does not grow.

    .venv/bin/python bench/import_memory.py [--rows 1000000] [--api]

Starts its own embedded PostgreSQL (fsync on, as deployed), migrates every module, creates
an admin, writes a generic CSV (url,code,title,tags,created_at) of --rows rows, then runs
the real console script: `encurta import csv FILE`. It prints rows, seconds, rows/s and the
command's peak RSS (its own getrusage at exit), for --rows and for a tenth of them: a
reader that kept rows would show a peak ten times larger.

--api uploads the same file to `POST /api/imports` of an `encurta serve` (with the body
limit raised) and prints the server's RSS before and its peak during the request (psutil,
sampled from outside every 0.1 s). That server also relays the command's link_created
events to analytics meanwhile: its rate is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.support.database import databases
from bench.support.serving import BIN, free_port

PASSWORD = "a long and unusual passphrase"  # noqa: S105 - a bench account
_WRAPPER = (
    "import resource, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "finally:\n"
    "    print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
    " file=sys.stderr)\n"
)


def write_csv(path: Path, rows: int, prefix: str) -> None:
    with path.open("w") as out:
        out.write("url,code,title,tags,created_at\n")
        for n in range(rows):
            out.write(
                f"https://example.com/{prefix}/articles/{n}?ref=import,{prefix}{n:08d},"
                f"Article {n},news|{prefix},2025-01-01T00:00:00Z\n"
            )


def run_import(path: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(BIN / "encurta"), "import", "csv", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    peak = next(
        int(line.split()[1])
        for line in reversed(done.stderr.splitlines())
        if line.startswith("peak_rss_kib")
    )
    return seconds, peak, done.stdout.strip().splitlines()[-1]


def report(label: str, rows: int, seconds: float, peak_kib: int, summary: str) -> None:
    print(
        f"{label:<22} rows={rows:>9,}  seconds={seconds:8.1f}  rows/s={rows / seconds:9,.0f}  "
        f"peak RSS={peak_kib / 1024:7.1f} MiB   [{summary}]"
    )


def through_api(path: Path, rows: int, env: dict[str, str]) -> None:
    port = free_port()
    server_env = {
        **env,
        "ENCURTA_SERVER__MAX_BODY_BYTES": str(path.stat().st_size + 1024),
        "ENCURTA_SERVER__BODY_TIMEOUT_SECONDS": "3600",
    }
    process = subprocess.Popen(
        [str(BIN / "encurta"), "serve", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=3600) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("encurta serve did not start")
                time.sleep(0.2)
            token = client.post(
                "/api/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
            ).json()["access_token"]
            watched = psutil.Process(process.pid)
            before = watched.memory_info().rss
            peak = before
            uploading = threading.Event()

            def sample() -> None:  # the server's RSS every 0.1 s, upload and import alike
                nonlocal peak
                while not uploading.wait(0.1):
                    peak = max(peak, watched.memory_info().rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()

            def body() -> object:
                with path.open("rb") as source:
                    while chunk := source.read(256 * 1024):
                        yield chunk

            started = time.perf_counter()
            answer = client.post(
                "/api/imports",
                params={"format": "csv"},
                content=body(),  # type: ignore[arg-type]
                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            )
            seconds = time.perf_counter() - started
            uploading.set()
            sampler.join()
            summary = answer.json()
            label = f"POST /api/imports ({answer.status_code})"
            print(
                f"{label:<22} rows={rows:>9,}  seconds={seconds:8.1f}  "
                f"rows/s={rows / seconds:9,.0f}  server RSS {before / 2**20:.1f} -> peak "
                f"{peak / 2**20:.1f} MiB (sampled every 0.1 s)   "
                f"[created {summary.get('created')}, skipped {summary.get('skipped')}, "
                f"refused {summary.get('refused')}]"
            )
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--api", action="store_true", help="also upload it to POST /api/imports")
    args = parser.parse_args()
    with databases(["auth", "shortener", "analytics"]) as dbs:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")},
            "ENCURTA_DATA_DIR": str(dbs.root / "data"),
            "ENCURTA_LOG_LEVEL": "warning",
            **{f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in dbs.urls.items()},
        }
        made = subprocess.run(
            [str(BIN / "encurta"), "users", "create", "admin@example.com", "--password-stdin"],
            input=PASSWORD,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise SystemExit(made.stderr)
        for label, rows, prefix in (
            ("encurta import (1/10)", args.rows // 10, "t"),
            ("encurta import", args.rows, "m"),
        ):
            path = dbs.root / f"{prefix}.csv"
            write_csv(path, rows, prefix)
            seconds, peak, summary = run_import(path, env)
            report(label, rows, seconds, peak, summary)
        if args.api:
            path = dbs.root / "a.csv"
            write_csv(path, args.rows, "a")
            through_api(path, args.rows, env)


if __name__ == "__main__":
    main()
