"""The rate limiter's two stores: counts, windows, headers, and replicas sharing PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.kernel import limits
from app.kernel.limits import Limit, LimitSettings, MemoryStore, PostgresStore, make_store
from app.kernel.problems import Problem


class Clock:
    def __init__(self, at: float = 1_000_040.0) -> None:  # 20 s into a minute's window
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits, "now", clock)
    return clock


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_urls["shortener"])
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM rate_limits"))
    yield engine
    await engine.dispose()


async def test_memory_store_counts_within_a_window_and_forgets_at_its_end(clock: Clock) -> None:
    limit = Limit(MemoryStore(), "things", 3, 60)
    decisions = [await limit.hit("a") for _ in range(4)]
    assert [d.allowed for d in decisions if d] == [True, True, True, False]
    last = decisions[-1]
    assert last is not None
    assert (last.limit, last.remaining, last.reset_seconds) == (3, 0, 40)
    assert last.headers() == {
        "RateLimit": "limit=3, remaining=0, reset=40",
        "RateLimit-Policy": "3;w=60",
        "Retry-After": "40",
    }
    other = await limit.hit("b")  # another key has its own count
    assert other is not None and other.allowed and other.remaining == 2
    clock.at += 40  # the next window
    again = await limit.hit("a")
    assert again is not None and again.allowed and again.remaining == 2
    assert "Retry-After" not in again.headers()


async def test_a_limit_of_zero_is_no_limit(clock: Clock) -> None:
    limit = Limit(MemoryStore(), "things", 0, 60)
    assert [await limit.hit("a") for _ in range(5)] == [None] * 5


async def test_check_raises_a_429_naming_the_limit(clock: Clock) -> None:
    limit = Limit(MemoryStore(), "links-per-user", 1, 60)
    await limit.check("u", "links")
    with pytest.raises(Problem) as refused:
        await limit.check("u", "links")
    assert refused.value.status == 429
    assert "links-per-user" in refused.value.detail
    assert refused.value.headers["Retry-After"] == "40"


async def test_the_memory_store_sweeps_expired_keys(clock: Clock) -> None:
    store = MemoryStore()
    for number in range(1500):
        await store.hit(f"k{number}", 10, 60)
    clock.at += 60
    for number in range(1100):
        await store.hit(f"n{number}", 10, 60)
    assert len(store._counters) < 1500  # the first window's keys went at a sweep


async def test_the_postgres_store_counts_and_stores_no_raw_key(
    clock: Clock, engine: AsyncEngine
) -> None:
    limit = Limit(PostgresStore(engine), "clients", 2, 60)
    decisions = [await limit.hit("203.0.113.7") for _ in range(3)]
    assert [d.allowed for d in decisions if d] == [True, True, False]
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT key, hits FROM rate_limits"))).all()
    assert len(rows) == 1
    assert rows[0].hits == 3
    assert b"203.0.113.7" not in bytes(rows[0].key)
    assert bytes(rows[0].key) == hashlib.sha256(b"60:clients:203.0.113.7").digest()
    clock.at += 40
    again = await limit.hit("203.0.113.7")
    assert again is not None and again.allowed and again.remaining == 1


async def test_the_postgres_store_deletes_ended_windows(clock: Clock, engine: AsyncEngine) -> None:
    store = PostgresStore(engine)
    await store.hit("old", 5, 60)
    clock.at += 120  # two windows on, and past the purge interval
    await store.hit("new", 5, 60)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM rate_limits"))).scalar_one()
    assert count == 1  # only the new window's row


async def test_replicas_sharing_postgres_never_allow_more_than_the_limit(
    clock: Clock, database_urls: dict[str, str], engine: AsyncEngine
) -> None:
    """Two stores over two engines (two replicas), hitting one key at once."""
    other = create_async_engine(database_urls["shortener"])
    try:
        first = Limit(PostgresStore(engine), "shared", 25, 60)
        second = Limit(PostgresStore(other), "shared", 25, 60)
        decisions = await asyncio.gather(
            *(limit.hit("k") for _ in range(40) for limit in (first, second))
        )
    finally:
        await other.dispose()
    allowed = [d for d in decisions if d is not None and d.allowed]
    assert len(allowed) == 25
    assert sorted(d.remaining for d in allowed) == list(range(25))


async def test_memory_stores_do_not_share(clock: Clock) -> None:
    """What `postgres` is for: two processes with memory stores each allow the limit."""
    first, second = Limit(MemoryStore(), "k", 2, 60), Limit(MemoryStore(), "k", 2, 60)
    decisions = [await limit.hit("a") for limit in (first, second) for _ in range(2)]
    assert all(d is not None and d.allowed for d in decisions)


async def test_the_setting_picks_the_store(engine: AsyncEngine) -> None:
    assert isinstance(make_store(LimitSettings(), engine), MemoryStore)
    assert isinstance(make_store(LimitSettings(store="postgres"), engine), PostgresStore)
