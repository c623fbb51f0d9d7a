"""The redirect's miss path: codes the cache does not hold, looked up many at a time.

With many links and random codes, most redirects miss the cache, and a miss through
SQLAlchemy costs a pool checkout, a transaction (BEGIN, the SELECT, ROLLBACK: three round
trips) and its statement and result machinery. Here misses share that cost:
- single flight: a code already being looked up is not looked up again; its redirects
  wait for the one answer;
- one query for many codes: the codes that miss in one turn of the event loop go to the
  database together, in one indexed `code = ANY($1)` on the driver's connection (asyncpg
  prepares it once per connection), one round trip;
- at most `_QUERIES_AT_ONCE` queries are out at a time: misses arriving meanwhile wait for
  the next, so a slow database gets bigger queries rather than more of them.

A failed lookup fails only the redirects waiting on it (each with its own `LookupFailed`,
answered 500 like any error) and caches nothing. A lookup that an eviction overtook (one
of our writes evicted its code while it was out) answers the redirects already waiting,
which arrived before the write was done, but is not cached, and later misses start their own.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.database import driver_connection
from app.modules.shortener.cache import CachedLink, LinkCache
from app.modules.shortener.rules import compiled

_SELECT = """
    SELECT code, id, target_url, expires_at, deleted_at IS NOT NULL AS deleted, valid_from,
           forward_query, max_visits, disabled_at IS NOT NULL AS disabled, disabled_reason,
           password_hash IS NOT NULL AS has_password, redirect_rules
    FROM urls WHERE code = ANY($1::text[])
"""
_CODES_PER_QUERY = 500
_QUERIES_AT_ONCE = 4  # each holds a pooled connection while it is out
# Past this a lookup fails (and its connection is dropped) rather than hold its redirects:
# an indexed lookup of a few hundred codes takes milliseconds.
_TIMEOUT_SECONDS = 10.0


# Why a link to this target answers 410 though it exists (its domain is blocked), or None:
# judged once per load into the cache.
Screen = Callable[[str], str | None]


class LookupFailed(Exception):
    """The database did not answer the lookup of a code (the cause is chained)."""


class _Flight:
    """One code's lookup and the redirects waiting for it."""

    __slots__ = ("code", "waiters")

    def __init__(self, code: str) -> None:
        self.code = code
        self.waiters: list[asyncio.Future[CachedLink | None]] = []


class Lookups:
    def __init__(self, engine: AsyncEngine, cache: LinkCache, screen: Screen | None = None) -> None:
        self._engine = engine
        self._screen = screen
        self._cache = cache
        # The flights a miss may join: not overtaken by an eviction since they began.
        self._joinable: dict[str, _Flight] = {}
        self._queue: list[_Flight] = []
        self._launch_scheduled = False
        self._queries: set[asyncio.Task[None]] = set()
        cache.on_evict(self._overtaken)

    async def get(self, code: str) -> CachedLink | None:
        """The link with this code (None if there is none), from the database."""
        loop = asyncio.get_running_loop()
        flight = self._joinable.get(code)
        if flight is None:
            flight = self._joinable[code] = _Flight(code)
            self._queue.append(flight)
            if not self._launch_scheduled:
                # After this turn of the loop: every miss of this turn joins the query.
                self._launch_scheduled = True
                loop.call_soon(self._launch)
        # A future per waiter: a redirect that is cancelled cancels only its own.
        answer: asyncio.Future[CachedLink | None] = loop.create_future()
        flight.waiters.append(answer)
        return await answer

    def _overtaken(self, code: str) -> None:
        self._joinable.pop(code, None)

    def _launch(self) -> None:
        self._launch_scheduled = False
        while self._queue and len(self._queries) < _QUERIES_AT_ONCE:
            batch = self._queue[:_CODES_PER_QUERY]
            del self._queue[:_CODES_PER_QUERY]
            query = asyncio.get_running_loop().create_task(self._look_up(batch))
            self._queries.add(query)
            query.add_done_callback(functools.partial(self._landed, batch))

    def _landed(self, batch: list[_Flight], query: asyncio.Task[None]) -> None:
        self._queries.discard(query)
        # However the query ended (failed, cancelled), no redirect is left waiting on it.
        cause = None if query.cancelled() else query.exception()
        for flight in batch:
            self._fail(flight, cause)
        self._launch()  # the misses that queued while every query was out

    async def _look_up(self, batch: list[_Flight]) -> None:
        rows = await self._fetch([flight.code for flight in batch])
        found = {row["code"]: row for row in rows}
        for flight in batch:
            row = found.get(flight.code)
            try:
                link = None if row is None else _cached(row, self._screen)
            except Exception as exc:  # noqa: BLE001 - one bad row fails its code alone
                self._fail(flight, exc)
                continue
            if self._joinable.get(flight.code) is flight:
                del self._joinable[flight.code]
                self._cache.put(flight.code, link)
            for waiter in flight.waiters:
                if not waiter.done():
                    waiter.set_result(link)

    def _fail(self, flight: _Flight, cause: BaseException | None) -> None:
        """Its waiters not yet answered get the cause (cancelled without one); nothing is
        cached, and the next miss of the code starts a lookup of its own."""
        if self._joinable.get(flight.code) is flight:
            del self._joinable[flight.code]
        for waiter in flight.waiters:
            if waiter.done():
                continue
            if cause is None:
                waiter.cancel()
            else:
                # One exception each: raised in every waiter, a shared one would gather
                # every waiter's traceback.
                error = LookupFailed(f"looking up the link '{flight.code}' failed")
                error.__cause__ = cause
                waiter.set_exception(error)

    async def _fetch(self, codes: Sequence[str]) -> list[asyncpg.Record]:
        async with driver_connection(self._engine) as driver:
            rows: list[asyncpg.Record] = await driver.fetch(
                _SELECT, codes, timeout=_TIMEOUT_SECONDS
            )
            return rows


def disabled_reason(reason: str | None) -> str:
    """What a link disabled by an admin answers (its 410's detail)."""
    said = f": {reason}" if reason else "."
    return f"This link has been disabled by an admin of this instance{said}"


def _cached(row: asyncpg.Record, screen: Screen | None) -> CachedLink:
    rules = compiled(_json(row["redirect_rules"]))
    refused = None
    if row["disabled"]:
        refused = disabled_reason(row["disabled_reason"])
    elif screen is not None:
        # A redirect rule's target on a blocked domain refuses the whole link, as its url's.
        targets = (row["target_url"], *(rule.url for rule in rules))
        refused = next((reason for url in targets if (reason := screen(url))), None)
    return CachedLink(
        id=row["id"],
        code=row["code"],
        target_url=row["target_url"],
        expires_at=row["expires_at"],
        deleted=row["deleted"],
        valid_from=row["valid_from"],
        forward_query=row["forward_query"],
        max_visits=row["max_visits"],
        refused=refused,
        has_password=row["has_password"],
        rules=rules,
    )


def _json(value: Any) -> Any:
    """jsonb as asyncpg gives it: text, unless a codec on the connection decoded it."""
    if value == "[]":  # no rules, most links: no parsing
        return ()
    return json.loads(value) if isinstance(value, str) else value
