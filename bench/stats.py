"""How fast one link's stats answer with ten million clicks behind them.

    .venv/bin/python bench/stats.py [--clicks 10000000] [--runs 30] [--seed auto|sql|consumer]
    .venv/bin/python bench/stats.py --clicks 200000 --compare-consumer   # the SQL path's check

Starts its own embedded PostgreSQL (fsync off: a bench) and seeds ONE link with clicks
spread over 30 days, a few hundred visitors a day, a mix of user agents, countries and
referers, ~5% bots (bench/support/click_shape.py). Two ways to seed:

- `consumer`: through the analytics consumer's batch path (Consumer.deliver, no HTTP, no
  relay), printing its rate (about 5,000 clicks/s: 10M would take over half an hour);
- `sql`: in the analytics database directly (bench/support/click_sql.py): the raw clicks
  from generate_series, then visitors, url_stats and url_dimension_stats computed from
  them by the consumer's rules. `auto` (the default) is `sql` above a million clicks
  (and for --compare-consumer), else `consumer`.

Either way the link is created through the consumer (link_created), and the rollups are
checked against the raw clicks (totals, per-dimension sums, uniques against visitors).
`--compare-consumer` (with sql; slow, as the consumer is) then feeds the very same clicks
through the consumer into a second link and requires identical stats answers for both.

Then it times `GET /api/stats/{code}` in-process (httpx.ASGITransport) over the 30 days
for each interval. Issue 10's target: p50 under 50 ms at 10M clicks, because every figure
comes from rollups, never from counting raw clicks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from app.bus.envelope import Envelope
from app.bus.inbox import Consumer
from app.config import Settings
from app.contracts.shortener import LinkCreated
from app.main import create_app
from app.modules.auth import AuthSettings
from app.modules.auth.settings import Argon2Settings
from app.registry import NAMES
from bench.support import click_sql
from bench.support.click_shape import DAYS, click_envelope, click_envelopes
from bench.support.database import databases
from bench.support.serving import asyncpg_dsn

CODE = "bench"
TWIN = "bench-consumer"  # --compare-consumer: the same clicks, through the consumer
SQL_ABOVE = 1_000_000  # --seed auto


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def deliver(
    consumer: Consumer, envelopes: Iterable[Envelope], batch_size: int
) -> tuple[int, float]:
    """Hands `envelopes` to the consumer in batches: how many, and the seconds it took."""
    delivering = 0.0
    count = 0
    batch: list[Envelope] = []
    for envelope in envelopes:
        batch.append(envelope)
        if len(batch) == batch_size:
            t0 = time.perf_counter()
            await consumer.deliver(batch)
            delivering += time.perf_counter() - t0
            count += len(batch)
            batch = []
    if batch:
        t0 = time.perf_counter()
        await consumer.deliver(batch)
        delivering += time.perf_counter() - t0
        count += len(batch)
    return count, delivering


async def same_clicks(dsn: str, code: str, twin: str) -> list[Envelope]:
    """The stored clicks of `code`, in time order, as click events of `twin`."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT occurred_at, ip_anonymized, country, city, user_agent, referer, "
            "visitor_hash, is_bot, bot_reason FROM clicks WHERE code = $1 "
            "ORDER BY occurred_at, click_id",
            code,
        )
    finally:
        await conn.close()
    return [
        click_envelope(
            twin,
            row["occurred_at"],
            ip_anonymized=row["ip_anonymized"],
            country=row["country"],
            city=row["city"],
            user_agent=row["user_agent"],
            referer=row["referer"],
            visitor_hash=row["visitor_hash"],
            is_bot=row["is_bot"],
            bot_reason=row["bot_reason"],
        )
        for row in rows
    ]


async def run(args: argparse.Namespace, urls: dict[str, str], data_dir: Path) -> None:
    settings = Settings(
        data_dir=data_dir,
        auth=AuthSettings(argon2=Argon2Settings(time_cost=1, memory_cost_kib=64, parallelism=1)),
    )
    app = create_app(settings, urls)
    transport = httpx.ASGITransport(app=app)
    analytics = create_async_engine(urls["analytics"])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://encurta.bench") as client,
    ):
        account = {"email": "bench@example.com", "password": "a long bench passphrase"}
        user = (await client.post("/api/auth/register", json=account)).json()
        token = (await client.post("/api/auth/login", json=account)).json()["access_token"]
        consumer = next(c for c in app.state.runtime.consumers if c.name == "analytics")

        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=DAYS)
        codes = [CODE, TWIN] if args.compare_consumer else [CODE]
        await consumer.deliver(
            [
                Envelope.wrap(
                    LinkCreated(
                        code=code,
                        link_id=uuid.uuid4(),
                        target_url="https://example.com/",
                        owner_id=uuid.UUID(user["id"]),
                        created_at=start,
                        expires_at=None,
                    )
                )
                for code in codes
            ]
        )

        began = time.perf_counter()
        if args.seed == "sql":
            print(f"seeding {args.clicks:,} clicks in SQL")
            await click_sql.seed_clicks(analytics, CODE, args.clicks, start)
            print(f"seeded in {time.perf_counter() - began:.1f} s (raw clicks and rollups)")
        else:
            count, delivering = await deliver(
                consumer, click_envelopes(CODE, args.clicks, start), args.batch
            )
            wall = time.perf_counter() - began
            print(f"seeded {count:,} clicks in batches of {args.batch} in {wall:.1f} s")
            print(f"  consumer (Consumer.deliver alone): {count / delivering:,.0f} clicks/s")
            print(f"  including making the envelopes:    {count / wall:,.0f} clicks/s")
        print(await click_sql.check(analytics, CODE))
        await click_sql.analyze(analytics)

        headers = {"Authorization": f"Bearer {token}"}
        query = {"from": start.isoformat(), "to": end.isoformat()}
        if args.compare_consumer:
            began = time.perf_counter()
            twin = await same_clicks(asyncpg_dsn(urls["analytics"]), CODE, TWIN)
            await deliver(consumer, twin, args.batch)
            print(
                f"the same {len(twin):,} clicks through the consumer as {TWIN} in "
                f"{time.perf_counter() - began:.1f} s; {await click_sql.check(analytics, TWIN)}"
            )
            await compare(client, headers, query)

        print(f"GET /api/stats/{CODE} over {DAYS} days, {args.runs} runs each (after 3 warm-up):")
        for interval in ("day", "hour", "week"):
            params = {**query, "interval": interval}
            samples = []
            for attempt in range(args.runs + 3):
                t0 = time.perf_counter()
                response = await client.get(f"/api/stats/{CODE}", params=params, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status_code == 200, response.text
                if attempt >= 3:
                    samples.append(elapsed)
            body = response.json()
            print(
                f"  interval={interval:<5} p50 {statistics.median(samples):6.1f} ms   "
                f"p99 {percentile(samples, 0.99):6.1f} ms   "
                f"({len(body['series'])} buckets; totals {body['totals']}, "
                f"uniques {body['unique_clicks']:,})"
            )
        if body["totals"]["all"] != args.clicks:
            raise SystemExit(f"expected {args.clicks} clicks, the stats say {body['totals']}")
    await analytics.dispose()


async def compare(
    client: httpx.AsyncClient, headers: dict[str, str], query: dict[str, str]
) -> None:
    """The stats of CODE (seeded in SQL) and of TWIN (the same clicks through the consumer)
    must be the same answer, for every interval, with and without bots."""
    asked = 0
    for interval in ("day", "hour", "week"):
        for include_bots in ("false", "true"):
            params = {**query, "interval": interval, "include_bots": include_bots}
            bodies = []
            for code in (CODE, TWIN):
                response = await client.get(f"/api/stats/{code}", params=params, headers=headers)
                assert response.status_code == 200, response.text
                bodies.append({k: v for k, v in response.json().items() if k != "code"})
            if bodies[0] != bodies[1]:
                differing = [k for k in bodies[0] if bodies[0][k] != bodies[1].get(k)]
                sql, consumer = ({k: b[k] for k in differing} for b in bodies)
                raise SystemExit(
                    f"interval={interval} include_bots={include_bots}: the SQL seeding and the "
                    f"consumer disagree on {differing}:\n  sql:      {str(sql)[:600]}\n"
                    f"  consumer: {str(consumer)[:600]}"
                )
            asked += 1
    print(
        f"the stats API answers the same for both links ({asked} queries: every interval, "
        "with and without bots; totals, uniques, series and top lists)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=2000, help="clicks per consumer batch")
    parser.add_argument(
        "--seed",
        choices=["auto", "sql", "consumer"],
        default="auto",
        help=f"how to seed the clicks (auto: sql above {SQL_ABOVE:,} clicks, else consumer)",
    )
    parser.add_argument(
        "--compare-consumer",
        action="store_true",
        help="with sql seeding: feed the same clicks through the consumer into a second link "
        "and require the same stats (slow: ~5,000 clicks/s)",
    )
    args = parser.parse_args()
    if args.seed == "auto":
        args.seed = "sql" if args.clicks > SQL_ABOVE or args.compare_consumer else "consumer"
    if args.compare_consumer and args.seed != "sql":
        parser.error("--compare-consumer checks the sql seeding: use it with --seed sql")
    for key in [k for k in os.environ if k.startswith("ENCURTA_")]:
        del os.environ[key]  # the developer's own settings must not change the bench

    # fsync off: the seeding writes millions of rows, and what is measured only reads.
    with databases(NAMES, durable=False) as made:
        asyncio.run(run(args, made.urls, made.root / "data"))


if __name__ == "__main__":
    main()
