"""How fast the exports stream, and in how much memory: `GET /api/links/export` over
100,000 links and `GET /api/stats/{code}/clicks` over 100,000 clicks, from a real
`encurta serve` over HTTP.

    .venv/bin/python bench/export.py [--links 100000] [--clicks 100000] [--runs 2]

Starts its own embedded PostgreSQL (fsync off: a bench) and seeds one account's links in
one SQL statement (titles, two tags each) and one link's clicks in SQL
(bench/support/click_sql.py). The server runs pinned to core 0 (bench/support/serving.py);
the client streams each export and counts its rows. Printed per format: rows/s, MB/s, and
the server process's resident memory before and at its peak while streaming (sampled every
20 ms): paged reads keep the peak near the idle size whatever the number of rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import psutil
from sqlalchemy.ext.asyncio import create_async_engine

from app.registry import NAMES
from bench.support import click_sql
from bench.support.click_shape import DAYS
from bench.support.database import databases
from bench.support.links import seed
from bench.support.serving import BIN, asyncpg_dsn, free_port, server

ACCOUNT = {"email": "bench@example.com", "password": "a long bench passphrase"}
CODE = "clicked"
_SEED_LINKS = """
INSERT INTO urls (id, code, target_url, owner_id, created_at, title, tags, tag_keys,
                  search_key)
SELECT gen_random_uuid(), 'x' || lpad(n::text, 7, '0'),
       'https://example.com/page/' || n || '?utm_source=bench', $1,
       $2::timestamptz + n * interval '1 second', 'Bench link number ' || n,
       ARRAY['bench', 'tag' || (n % 10)], ARRAY['bench', 'tag' || (n % 10)],
       'x' || lpad(n::text, 7, '0')
FROM generate_series(0, $3 - 1) AS n
"""


class PeakMemory:
    """Samples a process's RSS in a thread until stopped: the peak, in MiB."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stream(url: str, headers: dict[str, str], params: dict[str, str]) -> tuple[int, int, float]:
    """Rows (lines), bytes and seconds of one streamed export."""
    began = time.perf_counter()
    lines = size = 0
    with httpx.stream("GET", url, params=params, headers=headers, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
            size += len(chunk)
    return lines, size, time.perf_counter() - began


async def seed_links(shortener_url: str, owner: uuid.UUID, count: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(shortener_url))
    try:
        start = datetime.now(UTC) - timedelta(days=30)
        await conn.execute(_SEED_LINKS, owner, start, count)
        await conn.execute("ANALYZE urls")
    finally:
        await conn.close()


async def seed_clicks(analytics_url: str, owner: uuid.UUID, count: int) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    conn = await asyncpg.connect(asyncpg_dsn(analytics_url))
    try:
        await conn.execute(
            "INSERT INTO url_creations (code, link_id, owner_id, target_url, created_at) "
            "VALUES ($1, $2, $3, 'https://example.com/', $4)",
            CODE,
            uuid.uuid4(),
            owner,
            start,
        )
    finally:
        await conn.close()
    engine = create_async_engine(analytics_url)
    try:
        await click_sql.seed_clicks(engine, CODE, count, start, progress=False)
        await click_sql.analyze(engine)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=100_000)
    parser.add_argument(
        "--runs", type=int, default=2, help="streams per format (the fastest is shown)"
    )
    args = parser.parse_args()

    with databases(NAMES, durable=False) as dbs:
        asyncio.run(seed(dbs.urls["shortener"]))  # the link the server's readiness check follows
        port = free_port()
        env = {f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in dbs.urls.items()}
        env |= {
            "ENCURTA_PORT": str(port),
            "ENCURTA_DATA_DIR": str(dbs.root / "data"),
            "ENCURTA_LOG_LEVEL": "warning",
            "ENCURTA_ACCESS_LOG": "false",
        }
        pids: list[int] = []
        with server([str(BIN / "encurta"), "serve"], port, env, pids) as base:
            assert httpx.post(f"{base}/api/auth/register", json=ACCOUNT).status_code == 201
            login = httpx.post(f"{base}/api/auth/login", json=ACCOUNT).json()
            headers = {"Authorization": f"Bearer {login['access_token']}"}
            owner = uuid.UUID(httpx.get(f"{base}/api/auth/me", headers=headers).json()["id"])
            began = time.perf_counter()
            asyncio.run(seed_links(dbs.urls["shortener"], owner, args.links))
            asyncio.run(seed_clicks(dbs.urls["analytics"], owner, args.clicks))
            print(
                f"seeded {args.links:,} links and {args.clicks:,} clicks in "
                f"{time.perf_counter() - began:.1f} s; server pid {pids[0]} on core 0"
            )
            exports = [
                ("links", f"{base}/api/links/export", args.links),
                ("clicks", f"{base}/api/stats/{CODE}/clicks", args.clicks),
            ]
            for what, url, expected in exports:
                for export_format in ("jsonl", "csv"):
                    params = {"format": export_format, "include_bots": "true"}
                    best = None
                    highest = 0.0
                    for _ in range(args.runs):
                        with PeakMemory(pids[0]) as memory:
                            idle = memory.now()
                            lines, size, seconds = stream(url, headers, params)
                        rows = lines - (export_format == "csv")  # the header line
                        assert rows == expected, (what, export_format, rows, expected)
                        highest = max(highest, memory.peak)
                        if best is None or seconds < best[2]:
                            best = (rows, size, seconds, idle)
                    assert best is not None
                    rows, size, seconds, idle = best
                    peak = highest
                    print(
                        f"  {what:<6} {export_format:<5} {rows:>9,} rows  "
                        f"{rows / seconds:>9,.0f} rows/s  {size / seconds / 2**20:6.1f} MB/s  "
                        f"server RSS {idle:6.1f} MiB idle, {peak:6.1f} MiB peak "
                        f"(+{peak - idle:.1f})"
                    )


if __name__ == "__main__":
    main()
