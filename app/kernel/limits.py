"""Rate limits: so many hits of a key in a window, kept in memory or in PostgreSQL.

One interface (`Limit.hit(key)` -> `Decision`) and two stores. Both count in fixed
windows aligned to the epoch (a minute's window starts at :00): a key's hits in the
current window are one counter, so a hit is one atomic step, in memory as in the database.
A client may therefore burst up to twice a limit across a window's edge; it can never do
more than that, and never more than the limit within one window.

- `MemoryStore` (the default): counters in this process. With several replicas each keeps
  its own, so together they allow the limit times the replicas.
- `PostgresStore` (`ENCURTA_LIMITS__STORE=postgres`): counters in the module's own
  database (the `rate_limits` table, which each module that limits places in its own
  schema with `rate_limit_table`), one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`
  per hit, so replicas sharing the database share the limits. A key is stored as its
  SHA-256, never as it is (keys hold client addresses); rows live one window, and expired
  ones are deleted now and then by the hits themselves.

Windows are read from this process's clock (`now`): replicas keep their clocks in step
(NTP), and a test can move time by replacing `now`.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.problems import Problem

__all__ = [
    "Decision",
    "Limit",
    "LimitSettings",
    "MemoryStore",
    "PostgresStore",
    "Store",
    "make_store",
    "rate_limit_table",
]


def now() -> float:
    """The clock of every store (seconds since the epoch); tests replace it."""
    return time.time()


class LimitSettings(BaseModel):
    """Where every module keeps its rate-limit counters (`ENCURTA_LIMITS__...`)."""

    store: Literal["memory", "postgres"] = Field(
        default="memory",
        description="memory: each process counts alone (one replica). postgres: in each "
        "module's database, shared by its replicas, so limits do not multiply with them.",
    )


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit, with what the RateLimit headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends (at least 1)
    window_seconds: int
    hits: int = 0  # counted in the window, this hit included

    def headers(self) -> dict[str, str]:
        """draft-ietf-httpapi-ratelimit-headers, and Retry-After when refused."""
        headers = {
            "RateLimit": f"limit={self.limit}, remaining={self.remaining}, "
            f"reset={self.reset_seconds}",
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class Store(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        """Count `cost` hits of `key` in the current window; allowed while the count, this
        hit included, is within `limit`. A refused hit is counted too (it ends with the
        window anyway). A negative cost gives hits back (never below 0); 0 reads."""
        ...


def _window(at: float, window_seconds: int) -> tuple[int, int]:
    """(start of the window `at` falls in, whole seconds until it ends, at least 1)."""
    start = int(at // window_seconds) * window_seconds
    return start, max(1, math.ceil(start + window_seconds - at))


def _decision(hits: int, limit: int, reset: int, window_seconds: int) -> Decision:
    return Decision(hits <= limit, limit, max(0, limit - hits), reset, window_seconds, hits)


class MemoryStore:
    """Counters in this process: a dict of key -> (window start, hits). Expired entries are
    swept whenever the dict has doubled since the last sweep, so it stays bounded by the
    keys of about one window."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, int], tuple[int, int]] = {}
        self._sweep_at = 1024

    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        at = now()
        start, reset = _window(at, window_seconds)
        slot = (key, window_seconds)
        counted = self._counters.get(slot)
        hits = max(0, (counted[1] if counted is not None and counted[0] == start else 0) + cost)
        self._counters[slot] = (start, hits)
        if len(self._counters) >= self._sweep_at:
            self._sweep(at)
        return _decision(hits, limit, reset, window_seconds)

    def _sweep(self, at: float) -> None:
        for slot in [s for s, (start, _) in self._counters.items() if start + s[1] <= at]:
            del self._counters[slot]
        self._sweep_at = max(1024, 2 * len(self._counters))


def rate_limit_table(metadata: MetaData) -> Table:
    """`rate_limits`, placed in the database of every module that limits (its migrations
    create it, as they create the outbox)."""
    return Table(
        "rate_limits",
        metadata,
        Column("key", LargeBinary(32), primary_key=True),  # SHA-256 of the key
        Column("window_start", BigInteger, primary_key=True),  # epoch seconds
        Column("hits", Integer, nullable=False),
        Column("expires_at", BigInteger, nullable=False),  # epoch seconds
        Index("rate_limits_expiry", "expires_at"),
    )


_HIT = text(
    """
    INSERT INTO rate_limits (key, window_start, hits, expires_at)
    VALUES (:key, :start, GREATEST(:cost, 0), :expires)
    ON CONFLICT (key, window_start)
    DO UPDATE SET hits = GREATEST(rate_limits.hits + :cost, 0)
    RETURNING hits
    """
)
_PURGE = text("DELETE FROM rate_limits WHERE expires_at <= :now")
_PURGE_EVERY_SECONDS = 30.0


class PostgresStore:
    """Counters in a module's database: one atomic upsert per hit, shared by replicas."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._purged_at = 0.0

    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        at = now()
        start, reset = _window(at, window_seconds)
        digest = hashlib.sha256(f"{window_seconds}:{key}".encode()).digest()
        purge = at - self._purged_at >= _PURGE_EVERY_SECONDS
        if purge:
            self._purged_at = at
        async with self._engine.begin() as conn:
            hits = (
                await conn.execute(
                    _HIT,
                    {
                        "key": digest,
                        "start": start,
                        "cost": cost,
                        "expires": start + window_seconds,
                    },
                )
            ).scalar_one()
            if purge:
                await conn.execute(_PURGE, {"now": int(at)})
        return _decision(int(hits), limit, reset, window_seconds)


def make_store(settings: LimitSettings, engine: AsyncEngine) -> Store:
    """The store the settings name, over the module's own database for `postgres`."""
    if settings.store == "postgres":
        return PostgresStore(engine)
    return MemoryStore()


class Limit:
    """One limit: `limit` hits a key in `window_seconds`, 0 = none, named in its 429s."""

    def __init__(self, store: Store, name: str, limit: int, window_seconds: int) -> None:
        self.name = name
        self.limit = limit
        self.window_seconds = window_seconds
        self._store = store

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def hit(self, key: str, cost: int = 1) -> Decision | None:
        """The decision for one more hit of `key` (None when this limit is off)."""
        if not self.enabled:
            return None
        return await self._store.hit(f"{self.name}:{key}", self.limit, self.window_seconds, cost)

    async def check(self, key: str, what: str) -> Decision | None:
        """`hit`, raising the 429 Problem (headers, and the limit named) when refused."""
        decision = await self.hit(key)
        if decision is not None and not decision.allowed:
            raise too_many(self, decision, what)
        return decision


def too_many(limit: Limit, decision: Decision, what: str) -> Problem:
    """The 429 of a refused hit: which limit, and when to come back."""
    return Problem(
        429,
        f"Too many {what}: at most {decision.limit} every {decision.window_seconds} s "
        f"({limit.name}). Try again in {decision.reset_seconds} s.",
        slug="rate-limited",
        title="Rate limited",
        headers=decision.headers(),
    )
