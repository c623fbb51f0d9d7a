"""The click batcher (group commit) as a unit, against the real shortener database.

Transactions are counted by the outbox rows' `xmin` (the id of the transaction that wrote
them): no relay runs here, so no later UPDATE rewrites it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.handoff import HandOff, Lease
from app.contracts.shortener import LinkClicked
from app.kernel.database import create_engine
from app.modules.shortener import ShortenerSettings
from app.modules.shortener.clicks import ClickBatcher
from tests.conftest import asyncpg_dsn, truncate_all
from tests.modules.shortener.helpers import CHROME, ShortenerDb
from tests.support.waiting import eventually

CODES = ("alpha", "bravo", "charlie")
# How long a test waits for what it expects before it fails: a guard against a hang, never a
# measure of speed (the machine may be busy). Where a test shows that something happened
# because of X and not because of a timeout, that timeout is set well beyond this guard.
GUARD = 30.0


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    await truncate_all(database_urls)
    db = ShortenerDb(database_urls)
    for code in CODES:
        await db.execute(
            "INSERT INTO urls (id, code, target_url) VALUES ($1, $2, 'https://example.com/')",
            uuid.uuid4(),
            code,
        )
    engine = create_engine(database_urls["shortener"])
    yield engine
    await engine.dispose()


def click(code: str) -> Envelope:
    return Envelope.wrap(event(code))


def event(code: str) -> LinkClicked:
    return LinkClicked(
        code=code,
        click_id=uuid.uuid4(),
        ip_anonymized="198.51.100.0",
        country=None,
        city=None,
        user_agent=CHROME,
        referer=None,
        visitor_hash=uuid.uuid4().hex,
        is_bot=False,
        bot_reason=None,
    )


def batcher_settings(**changes: Any) -> ShortenerSettings:
    return ShortenerSettings(**changes)


async def counts(database_urls: dict[str, str]) -> dict[str, Any]:
    db = ShortenerDb(database_urls)
    # A link's count: what was folded into it, and its tallies not folded yet.
    rows = await db.fetch(
        "SELECT code, coalesce((SELECT clicks FROM click_counts c WHERE c.code = urls.code), 0)"
        " + coalesce((SELECT sum(clicks) FROM click_tallies t WHERE t.code = urls.code), 0)"
        " AS click_count FROM urls ORDER BY code"
    )
    return {
        "click_count": {row["code"]: row["click_count"] for row in rows},
        "outbox": await db.value("SELECT count(*) FROM outbox"),
        "distinct_events": await db.value("SELECT count(DISTINCT event_id) FROM outbox"),
        "transactions": await db.value("SELECT count(DISTINCT xmin::text) FROM outbox"),
    }


async def test_concurrent_clicks_commit_in_a_few_group_transactions_and_all_count(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    batcher = ClickBatcher(engine, batcher_settings())
    await batcher.start()
    clicks = [click(CODES[i % 3]) for i in range(200)]
    try:
        await asyncio.gather(*(batcher.record(c) for c in clicks))
        # Each record() returned after its group committed: everything is there now.
        state = await counts(database_urls)
    finally:
        await batcher.stop()

    assert state["click_count"] == {"alpha": 67, "bravo": 67, "charlie": 66}
    assert state["outbox"] == state["distinct_events"] == 200
    assert 1 <= state["transactions"] <= 5, state  # far fewer than one per click
    assert batcher.dropped == 0


async def test_a_group_never_exceeds_the_batch_size(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    batcher = ClickBatcher(engine, batcher_settings(click_batch_size=50))
    await batcher.start()
    try:
        await asyncio.gather(*(batcher.record(click("alpha")) for _ in range(200)))
    finally:
        await batcher.stop()

    sizes = await ShortenerDb(database_urls).fetch(
        "SELECT xmin::text, count(*) AS n FROM outbox GROUP BY 1"
    )
    assert sorted(row["n"] for row in sizes) == [50, 50, 50, 50]
    assert (await counts(database_urls))["click_count"]["alpha"] == 200


class CommitThenConnectionLost(ClickBatcher):
    """The first write commits, then reports a failure, as when the connection drops after
    COMMIT was sent: the batcher cannot know whether the group landed, and writes it again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[list[str]] = []

    async def _write(self, clicks: Sequence[Envelope]) -> None:
        self.writes.append([str(c.event_id) for c in clicks])
        await super()._write(clicks)
        if len(self.writes) == 1:
            raise ConnectionResetError("connection lost after COMMIT")


async def test_a_group_written_twice_after_an_uncertain_commit_counts_once(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    # The commit timeout is far beyond the guard: redirects released in time were released
    # by the rewrite's commit, not by the timeout.
    batcher = CommitThenConnectionLost(
        engine, batcher_settings(click_commit_timeout_seconds=10 * GUARD)
    )
    await batcher.start()
    clicks = [click(CODES[i % 2]) for i in range(30)]
    try:
        recorded = asyncio.gather(*(batcher.record(c) for c in clicks))
        await happens(recorded, f"record() was still waiting {GUARD:.0f} s after the failed commit")
        state = await counts(database_urls)
        # The failed write's task sleeps its retry delay (at most 0.1 s after one failure)
        # before it ends; let it, so stop() below is not about that (see the stop tests).
        await asyncio.sleep(0.2)
    finally:
        await batcher.stop()

    assert len(batcher.writes) >= 2
    assert batcher.writes[1][: len(batcher.writes[0])] == batcher.writes[0]  # the same group
    assert state["outbox"] == state["distinct_events"] == 30
    assert state["click_count"] == {"alpha": 15, "bravo": 15, "charlie": 0}


async def test_clicks_written_under_the_relays_lease_are_handed_over_with_their_ids(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    """With a relay taking rows (app.bus.handoff), a group's outbox rows are inserted
    leased to it and, once committed, handed over with the ids the outbox gave them; a
    rewrite after an uncertain commit hands nothing over again (its rows were skipped as
    already there: if the first attempt's result was lost, they are claimed in their
    turn, once their lease expires)."""
    handoff = HandOff(limit=1000)
    lease = Lease(uuid.uuid4(), 30.0)
    handoff.open(lease, [LinkClicked.type], lambda: None)
    batcher = ClickBatcher(engine, batcher_settings(), handoff)
    await batcher.start()
    clicks = [click(CODES[i % 3]) for i in range(40)]
    try:
        await asyncio.gather(*(batcher.record(c) for c in clicks))
    finally:
        await batcher.stop()

    ids, envelopes = handoff.take(1000)
    stored = await ShortenerDb(database_urls).fetch(
        "SELECT id, event_id::text, claimed_by, claimed_until > now() AS leased FROM outbox"
    )
    assert sorted(ids) == sorted(row["id"] for row in stored)
    assert sorted(envelopes, key=str) == sorted(clicks, key=str)
    assert {(row["claimed_by"], row["leased"]) for row in stored} == {(lease.relay, True)}
    by_id = {row["id"]: row["event_id"] for row in stored}
    assert [by_id[i] for i in ids] == [str(envelope.event_id) for envelope in envelopes]

    rewritten = CommitThenConnectionLost(engine, batcher_settings(), handoff)
    await rewritten.start()
    try:
        await rewritten.record(click("alpha"))
    finally:
        await rewritten.stop()
    assert len(rewritten.writes) == 2
    assert len(handoff.take(1000)[0]) == 1, "handed over by the first attempt only"


async def test_the_same_group_written_twice_directly_changes_nothing_the_second_time(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    batcher = ClickBatcher(engine, batcher_settings())
    group = [click("alpha"), click("alpha"), click("bravo")]

    await batcher._write(group)
    first = await counts(database_urls)
    await batcher._write(group)
    second = await counts(database_urls)

    assert first == second
    assert second["click_count"] == {"alpha": 2, "bravo": 1, "charlie": 0}
    assert second["outbox"] == 3


async def hold_tally_lock(database_urls: dict[str, str]) -> asyncpg.Connection:
    """Another session locks the click tallies against writes: the batcher's write waits,
    uncommitted."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE click_tallies IN SHARE MODE")
    return conn


async def hold_link_count(database_urls: dict[str, str], code: str) -> asyncpg.Connection:
    """Another session holds the link's count, as a concurrent fold would."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    await conn.execute("BEGIN")
    await conn.execute(
        "INSERT INTO click_counts (code, clicks) VALUES ($1, 0) "
        "ON CONFLICT (code) DO UPDATE SET clicks = click_counts.clicks",
        code,
    )
    return conn


async def lock_waiters(database_urls: dict[str, str]) -> int:
    """Sessions waiting for a lock: the batcher's write stuck behind `hold_tally_lock`."""
    waiting: int = await ShortenerDb(database_urls).value(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query LIKE '%INSERT INTO outbox%'"  # not the batcher's fold, waiting as well
    )
    return waiting


async def wait_until_blocked(database_urls: dict[str, str]) -> None:
    """Until the batcher's write waits for the held lock (it is inside its transaction,
    uncommitted), however long the busy machine takes to get it there."""
    await eventually(lambda: lock_waiters(database_urls), bool, "a write waiting for the lock")


async def happens(awaitable: Awaitable[Any], failure: str) -> None:
    """Await the event the test is about; GUARD only ends a hang, failing with `failure`."""
    try:
        await asyncio.wait_for(awaitable, timeout=GUARD)
    except TimeoutError:
        pytest.fail(failure)


async def wait_until_counted(database_urls: dict[str, str], code: str, n: int) -> dict[str, Any]:
    return await eventually(
        lambda: counts(database_urls), lambda state: state["click_count"][code] >= n, "counted"
    )


async def test_without_wait_for_commit_a_click_returns_before_its_commit_and_lands_after(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    batcher = ClickBatcher(engine, batcher_settings(wait_for_commit=False))
    await batcher.start()
    lock = await hold_tally_lock(database_urls)
    try:
        # The tallies stay locked until the ROLLBACK below: a record() that waited for its
        # commit would never return, and the guard would end it.
        await happens(
            batcher.record(click("alpha")), "record() waited for a commit that could not happen"
        )
        await wait_until_blocked(database_urls)  # the batcher is inside its transaction
        before = await counts(database_urls)
        await lock.execute("ROLLBACK")
        after = await wait_until_counted(database_urls, "alpha", 1)
    finally:
        await lock.close()
        await batcher.stop()

    assert (before["outbox"], before["click_count"]["alpha"]) == (0, 0)
    assert (after["outbox"], after["click_count"]["alpha"]) == (1, 1)


async def test_with_wait_for_commit_a_stuck_commit_holds_the_click_only_until_the_timeout(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    """A write that neither commits nor fails (a lock wait here; a frozen server or a network
    partition without a reset in production) must not hold redirects longer than
    click_commit_timeout_seconds: "while the database is away ... redirects keep answering
    after click_commit_timeout_seconds" (clicks.py). The click stays queued and lands later."""
    batcher = ClickBatcher(engine, batcher_settings(click_commit_timeout_seconds=0.3))
    await batcher.start()
    lock = await hold_tally_lock(database_urls)
    try:
        started = time.monotonic()
        recorded = asyncio.ensure_future(batcher.record(click("alpha")))
        released_at: list[float] = []
        recorded.add_done_callback(lambda _: released_at.append(time.monotonic()))
        await wait_until_blocked(database_urls)
        # The tallies stay locked until the ROLLBACK below: only the timeout can release it.
        await happens(
            recorded, f"record() was still waiting for a stuck commit after {GUARD:.0f} s"
        )
        still_stuck = await lock_waiters(database_urls)
        before = await counts(database_urls)
        await lock.execute("ROLLBACK")
        after = await wait_until_counted(database_urls, "alpha", 1)
    finally:
        await lock.close()
        await batcher.stop()

    # Released while its write was still stuck: by the timeout, and (a lower bound, which a
    # busy machine can only make longer) not before it.
    assert still_stuck == 1
    assert released_at[0] - started >= 0.3, "record() answered before its commit timeout"
    assert before["outbox"] == 0
    assert (after["outbox"], after["click_count"]["alpha"]) == (1, 1)


async def stops_on_its_own(batcher: ClickBatcher) -> bool:
    """stop(), with a grace period far beyond the guard: True if it returned because the
    writer finished, not because the grace period cancelled it."""
    writer = batcher._task
    assert writer is not None
    await happens(
        batcher.stop(grace_seconds=10 * GUARD), "stop() did not return once its writes were done"
    )
    return writer.done() and not writer.cancelled()


async def test_stop_writes_the_clicks_still_pending_and_returns_once_they_are_written(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    batcher = ClickBatcher(engine, batcher_settings(wait_for_commit=False))
    await batcher.start()
    # Without waiting for the commit, record() never yields: the writer has not run once
    # when stop() is called, so all 50 clicks are still in memory.
    for i in range(50):
        await batcher.record(click(CODES[i % 3]))

    stopped = await stops_on_its_own(batcher)

    state = await counts(database_urls)
    assert state["outbox"] == 50
    assert state["click_count"] == {"alpha": 17, "bravo": 17, "charlie": 16}
    # stop() returns once the writes are done; it must not sit out its grace period after.
    assert stopped, "stop() did not return once the pending clicks were written"


async def test_stop_returns_at_once_when_nothing_is_pending(engine: AsyncEngine) -> None:
    batcher = ClickBatcher(engine, batcher_settings())
    await batcher.start()
    await batcher.record(click("alpha"))

    assert await stops_on_its_own(batcher)


async def test_after_the_database_dropped_its_connections_the_next_group_gets_a_live_one(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    """The group's statement runs on the driver's connection, out of SQLAlchemy's sight: a
    lost connection must not be handed out again (nor its pooled siblings)."""
    batcher = ClickBatcher(engine, batcher_settings())
    await batcher._write([click("alpha")])  # a pooled connection, alive
    killer = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

        # pg_terminate_backend only signals: wait until the backends are gone.
        async def others() -> int:
            alive: int = await killer.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return alive

        await eventually(others, lambda alive: alive == 0, "the backends terminated")
    finally:
        await killer.close()

    with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)):
        await batcher._write([click("alpha")])
    await batcher._write([click("alpha")])  # at once: no dead connection is reused

    assert (await counts(database_urls))["click_count"]["alpha"] == 2


async def test_a_locked_link_count_does_not_hold_its_clicks(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    """Groups in flight never queue on a popular link's count: a write appends a tally and
    leaves the count alone (another session holding it, as a concurrent group's UPDATE
    once did, changes nothing)."""
    batcher = ClickBatcher(engine, batcher_settings())
    await batcher.start()
    holder = await hold_link_count(database_urls, "alpha")
    try:
        await happens(batcher.record(click("alpha")), "the click waited for the link's count")
        state = await counts(database_urls)
    finally:
        await holder.close()
        await batcher.stop()

    assert (state["outbox"], state["click_count"]["alpha"]) == (1, 1)


async def test_tallies_fold_into_the_links_once_even_when_folders_race(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    writer = ClickBatcher(engine, batcher_settings())
    await writer.start()
    await asyncio.gather(*(writer.record(click(CODES[i % 2])) for i in range(40)))
    others = [ClickBatcher(engine, batcher_settings()) for _ in range(3)]
    await asyncio.gather(*(other.fold() for other in others), writer.stop())
    db = ShortenerDb(database_urls)

    folded = await db.fetch(
        "SELECT code, coalesce(clicks, 0) AS click_count "
        "FROM urls LEFT JOIN click_counts USING (code) ORDER BY code"
    )
    assert {row["code"]: row["click_count"] for row in folded} == {
        "alpha": 20,
        "bravo": 20,
        "charlie": 0,
    }
    assert await db.value("SELECT count(*) FROM click_tallies") == 0


async def test_stop_returns_within_its_grace_while_a_fold_cannot_take_its_count(
    engine: AsyncEngine, database_urls: dict[str, str]
) -> None:
    """The last fold at stop waits for a count another session holds: stop() gives up on it
    within its grace (the tally stays, folded at the next start) instead of hanging the
    shutdown before the relays' last drain."""
    batcher = ClickBatcher(engine, batcher_settings())
    await batcher.start()
    holder = await hold_link_count(database_urls, "alpha")
    try:
        await batcher.record(click("alpha"))  # committed; its tally waits to be folded
        await happens(
            batcher.stop(grace_seconds=1.0), f"stop() still waited for the fold after {GUARD:.0f} s"
        )
    finally:
        await holder.close()
    state = await counts(database_urls)

    assert state["click_count"]["alpha"] == 1  # the tally, not folded, still counts
