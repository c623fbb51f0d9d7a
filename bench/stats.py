"""How fast one link's stats answer with a million clicks behind them.

    .venv/bin/python bench/stats.py [--clicks 1000000] [--runs 30] [--batch 2000]

Starts its own embedded PostgreSQL (fsync off: a bench), seeds ONE link through the
analytics consumer's batch path (Consumer.deliver, no HTTP, no relay) with clicks spread
over 30 days, a few hundred visitors a day, a mix of user agents, countries and referers,
~5% bots; prints the seeding rate; then times `GET /api/stats/{code}` in-process
(httpx.ASGITransport) over the 30 days for each interval. The issue's target: p50 under
100 ms, because every figure comes from rollups, never from counting raw clicks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.bus.envelope import Envelope
from app.config import Settings
from app.contracts.shortener import LinkClicked, LinkCreated
from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from app.main import create_app
from app.modules.auth import AuthSettings
from app.modules.auth.settings import Argon2Settings
from app.registry import NAMES

CODE = "bench"
DAYS = 30
VISITORS_PER_DAY = 300
BOTS_PER_DAY = 12
BOT_SHARE = 0.05
RANDOM = random.Random(20261125)  # the same clicks every run

HUMAN_AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        20,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        18,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Safari/605.1.15",
        10,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 5),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        6,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        4,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        5,
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        2,
    ),
]
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "curl/8.5.0",
]
PLACES = [
    ("PT", ["Lisbon", "Porto", "Braga", "Coimbra"], 25),
    ("BR", ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Recife"], 20),
    ("US", ["New York", "San Francisco", "Austin", "Seattle"], 18),
    ("ES", ["Madrid", "Barcelona"], 8),
    ("FR", ["Paris", "Lyon"], 7),
    ("DE", ["Berlin", "Munich"], 7),
    ("GB", ["London", "Manchester"], 6),
    ("IN", ["Bengaluru", "Mumbai"], 5),
    ("JP", ["Tokyo"], 2),
    ("AO", ["Luanda"], 2),
]
REFERERS = [
    (None, 40),
    ("https://www.google.com/", 18),
    ("https://t.co/abc", 10),
    ("https://news.ycombinator.com/item?id=1", 6),
    ("https://www.linkedin.com/feed/", 6),
    ("https://l.facebook.com/l.php", 6),
    ("https://www.reddit.com/r/python/", 5),
    ("android-app://com.slack", 3),
    ("https://duckduckgo.com/", 3),
    ("https://github.com/", 3),
]


def pick(options: list[tuple[Any, int]]) -> Any:
    return RANDOM.choices(
        [value for value, _ in options], weights=[weight for _, weight in options]
    )[0]


def click_envelopes(total: int, start: datetime) -> Iterator[Envelope]:
    """Clicks in time order over DAYS days, as the relay would deliver them."""
    span = timedelta(days=DAYS).total_seconds()
    for n in range(total):
        at = start + timedelta(seconds=span * n / total + RANDOM.random())
        day = at.date().isoformat()
        is_bot = RANDOM.random() < BOT_SHARE
        if is_bot:
            agent = RANDOM.choice(BOT_AGENTS)
            visitor = f"{day}-bot-{RANDOM.randrange(BOTS_PER_DAY)}"
            country, city, referer = "US", "Mountain View", None
        else:
            agent = pick(HUMAN_AGENTS)
            visitor = f"{day}-{RANDOM.randrange(VISITORS_PER_DAY)}"
            country, cities, _ = PLACES[
                RANDOM.choices(range(len(PLACES)), [w for _, _, w in PLACES])[0]
            ]
            city, referer = RANDOM.choice(cities), pick(REFERERS)
        event_id = uuid.uuid4()
        yield Envelope(
            event_id=event_id,
            type=LinkClicked.type,
            occurred_at=at,
            key=CODE,
            payload={
                "event_id": str(event_id),
                "occurred_at": at.isoformat(),
                "code": CODE,
                "click_id": str(uuid.uuid4()),
                "ip_anonymized": "198.51.100.0",
                "country": country,
                "city": city,
                "user_agent": agent,
                "referer": referer,
                "visitor_hash": visitor,
                "is_bot": is_bot,
                "bot_reason": "crawler user agent" if is_bot else None,
                "metadata": {},
            },
        )


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
        for envelope in click_envelopes(args.clicks, start):
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
