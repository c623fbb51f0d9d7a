"""How long one click group's write takes on a quiet database: the floor under a durable
redirect's wait, to set against what the batcher sees under load.

    .venv/bin/python bench/commit_latency.py [--groups 300] [--size 24]

Starts its own embedded PostgreSQL (fsync on, as deployed), then writes --groups groups of
--size clicks with the batcher's own statement, one after another, with synchronous_commit
on (the default: the commit waits for the WAL's fsync) and off (the fsync's share).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.bus.outbox import row_of, rows_document  # noqa: E402
from app.modules.shortener.clicks import WRITE  # noqa: E402
from bench.support.database import databases  # noqa: E402
from bench.support.links import seed  # noqa: E402
from bench.support.serving import CODE, asyncpg_dsn  # noqa: E402
from tests.modules.shortener.test_clicks import event  # noqa: E402


async def measure(url: str, groups: int, size: int) -> None:
    await seed(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for synchronous_commit in ("on", "off"):
            await conn.execute(f"SET synchronous_commit = {synchronous_commit}")
            took: list[float] = []
            for _ in range(groups):
                rows = rows_document([row_of(event(CODE)) for _ in range(size)])
                started = time.perf_counter()
                await conn.fetchrow(WRITE, rows, None, None)  # not leased: no relay runs
                took.append((time.perf_counter() - started) * 1000)
            took.sort()
            print(
                f"synchronous_commit={synchronous_commit}: a group of {size} in "
                f"{statistics.median(took):.2f} ms median, {took[int(len(took) * 0.9)]:.2f} ms p90"
            )
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--size", type=int, default=24, help="clicks per group")
    args = parser.parse_args()
    with databases(["shortener"]) as made:
        asyncio.run(measure(made.urls["shortener"], args.groups, args.size))


if __name__ == "__main__":
    main()
