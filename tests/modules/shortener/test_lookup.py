"""The redirect's miss path (lookup.py) against the real shortener database: misses of one
code share one lookup, misses of one turn share one query, answers and cache semantics are
those of one query per miss, and a failed lookup fails only its waiters.

Queries are counted where they reach the driver: asyncpg's `Connection.fetch` is wrapped to
record the codes of each link lookup (and, where a test needs a lookup to be out, to hold
its rows after the query has run); the database answers every query.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.kernel.database import create_engine
from app.kernel.settings import DatabaseSettings
from app.main import create_app
from app.modules.shortener import lookup
from app.modules.shortener.cache import CachedLink, LinkCache
from app.modules.shortener.lookup import LookupFailed
from app.modules.shortener.service import Links
from tests.conftest import asyncpg_dsn, truncate_all
from tests.modules.shortener.helpers import ShortenerDb
from tests.support.problems import assert_problem
from tests.support.waiting import GUARD, eventually

T = TypeVar("T")

OWNER = uuid.UUID("00000000-0000-4000-8000-000000000001")
HOUR = timedelta(hours=1)
LINKS = {  # code: (expires in, deleted)
    "live": (None, False),
    "gone": (None, True),
    "expired": (-HOUR, False),
    "later": (24 * HOUR, False),
}


class Driver:
    """What reached asyncpg: the codes of each link lookup, in order. `hold(n)` makes the
    next n lookups keep their rows (the query has run) until `release()`."""

    def __init__(self) -> None:
        self.lookups: list[list[str]] = []
        self.held = 0
        self._to_hold = 0
        self._released = asyncio.Event()

    def hold(self, lookups: int) -> None:
        self._to_hold = lookups
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def after_query(self) -> None:
        if self._to_hold > 0:
            self._to_hold -= 1
            self.held += 1
            await self._released.wait()


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    observed = Driver()
    fetch = asyncpg.connection.Connection.fetch

    async def observed_fetch(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        if query != lookup._SELECT:
            return await fetch(self, query, *args, **kw)
        observed.lookups.append(list(args[0]))
        rows = await fetch(self, query, *args, **kw)
        await observed.after_query()
        return rows

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", observed_fetch)
    yield observed
    observed.release()


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    await truncate_all(database_urls)
    db = ShortenerDb(database_urls)
    now = datetime.now(UTC)
    for code, (expires_in, deleted) in LINKS.items():
        await db.execute(
            "INSERT INTO urls (id, code, target_url, owner_id, expires_at, deleted_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            uuid.uuid4(),
            code,
            f"https://example.com/{code}",
            OWNER,
            None if expires_in is None else now + expires_in,
            now if deleted else None,
        )
    engine = create_engine(database_urls["shortener"])
    yield engine
    await engine.dispose()


@pytest.fixture
def links(engine: AsyncEngine) -> Links:
    return Links(engine=engine, cache=LinkCache(1000, 30), code_length=8)


async def within_guard(awaitable: Awaitable[T]) -> T:
    """A guard against a hang, not a measure of speed."""
    return await asyncio.wait_for(awaitable, GUARD)


def resolving(links: Links, code: str) -> asyncio.Task[CachedLink | None]:
    return asyncio.ensure_future(links.resolve(code))


def checked_out(engine: AsyncEngine) -> int:
    count: int = engine.pool.checkedout()  # type: ignore[attr-defined]
    return count


async def test_concurrent_misses_of_one_code_make_one_query(links: Links, driver: Driver) -> None:
    answers = await within_guard(asyncio.gather(*(links.resolve("live") for _ in range(50))))

    assert driver.lookups == [["live"]]
    first = answers[0]
    assert first is not None and first.target_url == "https://example.com/live"
    assert all(answer is first for answer in answers)


async def test_a_miss_while_its_code_is_being_looked_up_joins_that_lookup(
    links: Links, driver: Driver
) -> None:
    driver.hold(1)
    first = resolving(links, "live")
    await eventually(lambda: driver.held, what="the lookup has run")
    second = resolving(links, "live")
    await asyncio.sleep(0)  # one turn: the second miss finds the lookup out
    driver.release()

    assert await within_guard(first) is await within_guard(second)
    assert driver.lookups == [["live"]]


async def test_misses_of_one_turn_share_one_query_and_each_gets_its_answer(
    links: Links, driver: Driver
) -> None:
    codes = ["live", "nope", "gone", "expired", "later"]

    live, unknown, deleted, expired, later = await within_guard(
        asyncio.gather(*(links.resolve(code) for code in codes))
    )

    assert driver.lookups == [codes]
    assert live is not None and not live.is_gone()
    assert live.redirect_headers[0] == (b"location", b"https://example.com/live")
    assert unknown is None
    assert deleted is not None and deleted.deleted and deleted.is_gone()
    assert expired is not None and not expired.deleted and expired.is_gone()
    assert later is not None and not later.is_gone()
    # All cached, "no such code", deleted and expired too: asked again, no query.
    again = await within_guard(asyncio.gather(*(links.resolve(code) for code in codes)))
    assert again == [live, unknown, deleted, expired, later]
    assert len(driver.lookups) == 1


async def test_misses_while_every_query_is_out_wait_and_go_in_one_query(
    links: Links, driver: Driver, engine: AsyncEngine
) -> None:
    """At most _QUERIES_AT_ONCE queries (and pooled connections) at a time: a slow database
    gets bigger queries, not more of them."""
    out = lookup._QUERIES_AT_ONCE
    driver.hold(out)
    first = []
    for i in range(out):  # one turn each: one query each
        first.append(resolving(links, f"first{i}"))
        await eventually(lambda: driver.held, lambda held, n=i + 1: held == n, "the query is out")
    waiting = [resolving(links, f"then{i}") for i in range(3)]
    # No way to see that nothing happens but to give it turns: these go nowhere while held.
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(driver.lookups) == out
    driver.release()

    assert await within_guard(asyncio.gather(*first, *waiting)) == [None] * (out + 3)
    assert driver.lookups[out:] == [["then0", "then1", "then2"]]
    assert checked_out(engine) == 0


async def test_unknown_codes_are_cached_briefly_and_links_for_the_ttl(
    engine: AsyncEngine, driver: Driver
) -> None:
    now = [0.0]
    links = Links(engine=engine, cache=LinkCache(1000, 30, clock=lambda: now[0]), code_length=8)
    await links.resolve("live")
    await links.resolve("nope")

    now[0] = 6.0  # past the 5 s of a "no such code", within the link's 30 s
    assert (await links.resolve("live")) is not None
    assert await links.resolve("nope") is None
    assert driver.lookups == [["live"], ["nope"], ["nope"]]


async def test_our_writes_evict_and_the_next_miss_reads_the_change(
    links: Links, driver: Driver, database_urls: dict[str, str]
) -> None:
    await links.resolve("live")
    await ShortenerDb(database_urls).execute(
        "UPDATE urls SET target_url = 'https://example.com/moved' WHERE code = 'live'"
    )
    cached = await links.resolve("live")
    assert cached is not None and cached.target_url == "https://example.com/live"  # the TTL's

    links.cache.evict("live")
    moved = await links.resolve("live")
    await links.delete(OWNER, "later")
    deleted = await links.resolve("later")

    assert moved is not None and moved.target_url == "https://example.com/moved"
    assert deleted is not None and deleted.is_gone()


async def test_a_lookup_overtaken_by_our_write_is_not_cached_and_later_misses_see_the_write(
    links: Links, driver: Driver
) -> None:
    """A lookup that read before a link was created answers the redirect that was waiting
    (it came before the write finished), but its "no such code" must not be cached, and a
    miss after the write must not join it."""
    driver.hold(1)
    before = resolving(links, "fresh")
    await eventually(lambda: driver.held, what="the lookup has read: no such code yet")
    created = await links.create("https://example.com/fresh", None, "fresh", None)
    after = await within_guard(links.resolve("fresh"))
    driver.release()

    assert await within_guard(before) is None
    assert after is not None and after.id == created.id
    assert await links.resolve("fresh") is after  # the later lookup's answer was cached
    assert driver.lookups == [["fresh"], ["fresh"]]


async def test_a_cancelled_redirect_does_not_cancel_the_others_waiting_on_its_lookup(
    links: Links, driver: Driver
) -> None:
    driver.hold(1)
    gone = resolving(links, "live")
    stays = resolving(links, "live")
    await eventually(lambda: driver.held, what="the lookup has run")
    gone.cancel()
    driver.release()

    link = await within_guard(stays)
    assert link is not None and link.code == "live"
    assert gone.cancelled()
    assert await links.resolve("live") is link


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound here, never listening): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_a_lookup_that_cannot_connect_fails_every_waiter_and_caches_nothing(
    closed_port: int,
) -> None:
    engine = create_engine(f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{closed_port}/none")
    links = Links(engine=engine, cache=LinkCache(1000, 30), code_length=8)
    try:
        answers = await within_guard(
            asyncio.gather(
                *(links.resolve(code) for code in ["a", "a", "b"]), return_exceptions=True
            )
        )
        again = await within_guard(asyncio.gather(links.resolve("a"), return_exceptions=True))
        assert checked_out(engine) == 0
    finally:
        await engine.dispose()

    assert [type(answer) for answer in answers + again] == [LookupFailed] * 4
    assert all(answer.__cause__ is not None for answer in answers)
    assert len(links.cache) == 0


async def test_a_lost_connection_fails_its_waiters_and_the_next_lookup_gets_a_live_one(
    database_urls: dict[str, str], engine: AsyncEngine, driver: Driver
) -> None:
    """The query runs on the driver's connection, out of SQLAlchemy's sight: a lost
    connection must not be handed out again. One pooled connection, so a reused dead one
    would fail the next lookup too (the `engine` fixture only seeds the links)."""
    single = create_engine(
        database_urls["shortener"], DatabaseSettings(pool_size=1, max_overflow=0)
    )
    links = Links(engine=single, cache=LinkCache(1000, 30), code_length=8)
    try:
        await links.resolve("live")  # the pooled connection, alive
        killer = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
        try:
            await killer.execute(
                "SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()

        failed = await within_guard(
            asyncio.gather(
                *(links.resolve(code) for code in ["later", "later", "gone"]),
                return_exceptions=True,
            )
        )
        later = await within_guard(links.resolve("later"))  # at once: a live connection
        assert checked_out(single) == 0
    finally:
        await single.dispose()

    assert [type(answer) for answer in failed] == [LookupFailed] * 3
    lost = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)
    assert all(isinstance(answer.__cause__, lost) for answer in failed)
    assert later is not None and later.code == "later"
    assert driver.lookups == [["live"], ["later", "gone"], ["later"]]


async def test_a_redirect_whose_lookup_fails_answers_500_as_any_unexpected_error(
    database_urls: dict[str, str], settings: Settings, closed_port: int
) -> None:
    """The outcome of a database error on the redirect path, as before the lookups were
    shared: the generic problem (nothing of the error's text), and the error logged."""
    dead = f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{closed_port}/none"
    app = create_app(settings, {**database_urls, "shortener": dead})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client,
    ):
        responses = await within_guard(asyncio.gather(*(client.get("/somecode") for _ in range(3))))

    for response in responses:
        body = assert_problem(response, 500)
        assert "nobody" not in body["detail"] and str(closed_port) not in body["detail"]
