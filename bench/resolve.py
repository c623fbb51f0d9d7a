"""µs per `Links.resolve`, in process (no HTTP): a cached code, and codes that miss.

    .venv/bin/python bench/resolve.py [--links 200000] [--seconds 3] [--concurrency 64]

Seeds --links links in the shortener's database (the embedded PostgreSQL, fsync off, in a
temporary folder), then resolves for --seconds per case:
- hit: one code, always cached (the single-link figure);
- miss: random codes with a cache that keeps nothing, one resolve at a time and with
  --concurrency resolves in flight (what a loaded server sees);
- mixed: random codes over every link with a cache of a tenth of them, as 1M links with
  the default 100k-entry cache: ~90 % misses.
Printed per case: resolves, wall µs and this process's CPU µs per resolve. The database
runs on the same machine, so wall time includes its share; CPU µs is what the app spends.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.kernel import migrations  # noqa: E402
from app.kernel.database import create_engine  # noqa: E402
from app.kernel.embedded import EmbeddedPostgres  # noqa: E402
from app.modules.shortener.cache import LinkCache  # noqa: E402
from app.modules.shortener.service import Links  # noqa: E402


def codes_of(count: int) -> list[str]:
    return [f"c{i:07d}" for i in range(count)]


async def seed(url: str, codes: list[str]) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("TRUNCATE urls")
        await conn.copy_records_to_table(
            "urls",
            records=[(uuid.uuid4(), code, f"https://example.com/{code}") for code in codes],
            columns=["id", "code", "target_url"],
        )
        await conn.execute("ANALYZE urls")
    finally:
        await conn.close()


async def measure(
    links: Links, pick: Callable[[], str], seconds: float, concurrency: int
) -> tuple[int, float, float]:
    """Resolves done, wall µs and CPU µs per resolve."""
    done = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker() -> None:
        nonlocal done
        while loop.time() < deadline:
            for _ in range(100):
                link = await links.resolve(pick())
                assert link is not None
            done += 100

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return done, wall / done * 1e6, cpu / done * 1e6


async def bench(url: str, codes: list[str], seconds: float, concurrency: int) -> None:
    engine = create_engine(url)
    rng = random.Random(10)

    def anyone() -> str:
        return rng.choice(codes)

    cases = [
        ("hit, one code", LinkCache(100_000, 30), lambda: codes[0], 1),
        ("miss, 1 in flight", LinkCache(0, 30), anyone, 1),
        (f"miss, {concurrency} in flight", LinkCache(0, 30), anyone, concurrency),
        (f"mixed 1/10 cached, {concurrency}", LinkCache(len(codes) // 10, 30), anyone, concurrency),
    ]
    try:
        print(f"{'case':<28} {'resolves':>9} {'wall µs':>9} {'CPU µs':>8}")
        for name, cache, pick, in_flight in cases:
            links = Links(engine=engine, cache=cache, code_length=8)
            await measure(links, pick, min(seconds, 0.5), in_flight)  # warm: pool, cache
            done, wall_us, cpu_us = await measure(links, pick, seconds, in_flight)
            print(f"{name:<28} {done:>9} {wall_us:>9.1f} {cpu_us:>8.1f}")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="encurta-bench-resolve-"))
    root.chmod(0o755)  # the embedded PostgreSQL's user must get in
    server = EmbeddedPostgres(root / "postgres", durable=False)
    server.start()
    try:
        url = asyncio.run(server.provision(["shortener"]))["shortener"]
        migrations.upgrade("shortener", url)
        codes = codes_of(args.links)
        asyncio.run(seed(url, codes))
        asyncio.run(bench(url, codes, args.seconds, args.concurrency))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
