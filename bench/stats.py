"""How fast one link's stats answer with a million clicks behind them.

    .venv/bin/python bench/stats.py [--clicks 1000000] [--runs 30] [--batch 2000]

Starts its own embedded PostgreSQL (fsync off: a bench), seeds ONE link through the
analytics consumer's batch path (Consumer.deliver, no HTTP, no relay) with clicks spread
over 30 days, a few hundred visitors a day, a mix of user agents, countries and referers,
~5% bots (bench/support/click_shape.py); prints the seeding rate; then times
`GET /api/stats/{code}` in-process (httpx.ASGITransport) over the 30 days for each
interval. The issue's target: p50 under 100 ms, because every figure comes from rollups,
never from counting raw clicks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from app.bus.envelope import Envelope
from app.config import Settings
from app.contracts.shortener import LinkCreated
from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.main import create_app
from app.modules.auth import AuthSettings
from app.modules.auth.settings import Argon2Settings
from app.registry import NAMES
from bench.support.click_shape import DAYS, click_envelopes

CODE = "bench"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, urls: dict[str, str], data_dir: Path) -> None:
    settings = Settings(
        data_dir=data_dir,
        auth=AuthSettings(argon2=Argon2Settings(time_cost=1, memory_cost_kib=64, parallelism=1)),
    )
    app = create_app(settings, urls)
    transport = httpx.ASGITransport(app=app)
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
        created = LinkCreated(
            code=CODE,
            link_id=uuid.uuid4(),
            target_url="https://example.com/",
            owner_id=uuid.UUID(user["id"]),
            created_at=start,
            expires_at=None,
        )
        await consumer.deliver([Envelope.wrap(created)])

        delivering = 0.0
        began = time.perf_counter()
        batch: list[Envelope] = []
        for envelope in click_envelopes(CODE, args.clicks, start):
            batch.append(envelope)
            if len(batch) == args.batch:
                t0 = time.perf_counter()
                await consumer.deliver(batch)
                delivering += time.perf_counter() - t0
                batch = []
        if batch:
            t0 = time.perf_counter()
            await consumer.deliver(batch)
            delivering += time.perf_counter() - t0
        wall = time.perf_counter() - began
        print(f"seeded {args.clicks:,} clicks in batches of {args.batch} in {wall:.1f} s")
        print(f"  consumer (Consumer.deliver alone): {args.clicks / delivering:,.0f} clicks/s")
        print(f"  including making the envelopes:    {args.clicks / wall:,.0f} clicks/s")

        headers = {"Authorization": f"Bearer {token}"}
        query = {"from": start.isoformat(), "to": end.isoformat()}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("ENCURTA_")]:
        del os.environ[key]  # the developer's own settings must not change the bench

    root = Path(tempfile.mkdtemp(prefix="encurta-bench-stats-"))
    root.chmod(0o755)  # the server runs as `nobody` when we are root
    server = EmbeddedPostgres(root / "postgres", durable=False)
    server.start()
    try:
        urls = asyncio.run(server.provision(list(NAMES)))
        for module, url in urls.items():
            migrations.upgrade(module, url)
        asyncio.run(run(args, urls, root / "data"))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
