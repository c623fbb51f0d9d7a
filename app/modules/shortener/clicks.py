"""The click batcher: group commit for the redirect path.

Redirects hand their clicks here. One writer commits them in groups, in one transaction
per group holding the outbox rows and the links' click tallies, so the cost of a commit is
shared by every click that arrived while the previous one was in flight. A group appends a
tally row per link rather than updating the link's count, so groups in flight never queue
on a popular link's row lock; the batcher folds the tallies into `click_counts` about once
a second. By default a redirect waits for its group (a 302 that reached the client was
counted); with `wait_for_commit=False` it answers at once and a crash may lose the clicks
not yet written.
While the database is away, clicks wait in a bounded buffer and redirects keep answering
after `click_commit_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.handoff import HandOff
from app.bus.outbox import INSERT_ROWS, NOTIFY, OutboxRow, rows_document
from app.bus.retry import backoff
from app.contracts.shortener import LinkClicked
from app.kernel.database import driver_connection
from app.modules.shortener.settings import ShortenerSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# One statement, so one round trip and one implicit transaction per group: the outbox rows,
# and a tally per link counted from the rows the outbox actually took (a group written again
# after an uncertain commit is neither stored nor counted twice). Rows leased to the relay
# ($2, $3: app.bus.handoff) are handed to it in memory; others wake it with a NOTIFY.
# Returned: the ids of the rows inserted, in insertion order.
WRITE = f"""
    WITH inserted AS ({INSERT_ROWS}),
    counted AS (
        INSERT INTO click_tallies (code, clicks)
        SELECT key, count(*) FROM inserted GROUP BY key
        RETURNING 1
    ),
    notified AS (SELECT {NOTIFY} WHERE $2::uuid IS NULL)
    SELECT ARRAY(SELECT id FROM inserted ORDER BY id),
           (SELECT count(*) FROM counted), (SELECT count(*) FROM notified)
"""  # noqa: S608 - made of constants, no input

# Tallies are taken (deleted) and added to their codes' counts in one transaction, so each
# counts once even when replicas fold at the same time (a folder that finds a tally taken
# skips it). Counts are written in code order, so concurrent folders never wait in a cycle.
FOLD = """
    WITH taken AS (DELETE FROM click_tallies RETURNING code, clicks)
    INSERT INTO click_counts AS counts (code, clicks)
    SELECT code, sum(clicks) FROM taken GROUP BY code ORDER BY code
    ON CONFLICT (code) DO UPDATE SET clicks = counts.clicks + excluded.clicks
"""
_FOLD_EVERY_SECONDS = 1.0
# A fold that waits longer (a lock held elsewhere, a frozen server) gives up; the tallies
# wait for the next one.
_FOLD_TIMEOUT_SECONDS = 10.0


# A failed write is tried again within 0.1 s of a blip, and at most 5 s apart while the
# database stays away: clicks wait in memory meanwhile, so they are retried sooner than events.
_RETRY_BASE_SECONDS = 0.1
_RETRY_MAX_SECONDS = 5.0


class _Pending:
    __slots__ = ("answer", "click", "committed", "since")

    def __init__(
        self, click: Envelope, committed: asyncio.Future[Any] | None, answer: object, since: float
    ) -> None:
        self.click = click
        self.committed = committed
        self.answer = answer
        self.since = since


class ClickMetrics:
    """The batcher's series (GET /metrics): clicks committed, group sizes, commit latency.
    Recorded once per group, not per click: nothing on the redirect's own path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.recorded = Counter(
            "encurta_shortener_clicks_recorded",
            "Clicks committed to the shortener's database (outbox rows and tallies).",
            registry=registry,
        )
        self.group_size = Histogram(
            "encurta_shortener_click_group_size",
            "Clicks per group committed together.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "encurta_shortener_click_commit_seconds",
            "Seconds to write and commit one group of clicks.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )


class ClickBatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: ShortenerSettings,
        handoff: HandOff | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = ClickMetrics(registry if registry is not None else CollectorRegistry())
        self._handoff = handoff if handoff is not None else HandOff()
        self._batch_size = settings.click_batch_size
        self._writers = asyncio.Semaphore(settings.click_writers)
        self._wait = settings.wait_for_commit
        self._timeout = settings.click_commit_timeout_seconds
        self._limit = settings.click_buffer_limit
        self._pending: list[_Pending] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._folding: asyncio.Task[None] | None = None
        self._closing = False
        self._failures = 0
        self.dropped = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="click-batcher")
        self._folding = asyncio.create_task(self._fold_forever(), name="click-tally-fold")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Write what is pending (for at most `grace_seconds`), then stop."""
        if self._task is None:
            return
        self._closing = True
        self._ready.set()
        try:
            await asyncio.wait_for(self._task, grace_seconds)
        except TimeoutError:
            log.error("click batcher: %d clicks not written at exit", len(self._pending))
        self._task = None
        if self._folding is not None:
            self._folding.cancel()
            await asyncio.wait([self._folding])
            self._folding = None
        # Within the grace too: what is left is folded at the next start, or by a replica.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(grace_seconds):
                await self.fold()

    async def fold(self) -> None:
        """Add the pending tallies to their links' counts."""
        async with driver_connection(self._engine) as driver:
            await driver.execute(FOLD, timeout=_FOLD_TIMEOUT_SECONDS)

    async def _fold_forever(self) -> None:
        while True:
            try:
                await self.fold()
            except Exception as exc:  # noqa: BLE001 - the tallies wait for the next fold
                log.warning("click batcher: tallies not folded (%s)", exc)
            await asyncio.sleep(_FOLD_EVERY_SECONDS)

    async def record(self, click: Envelope) -> None:
        """Queue a click; with wait_for_commit, return once its group committed."""
        committed = self.enqueue(click, None)
        if committed is not None:
            await committed

    def enqueue(self, click: Envelope, answer: T) -> asyncio.Future[T] | None:
        """Queue a click; with wait_for_commit, the future its redirect waits for, done with
        `answer` once its group committed (or the group's timeout passed)."""
        loop = asyncio.get_running_loop()
        if len(self._pending) >= self._limit:
            dropped = self._pending.pop(0)
            self._release(dropped)
            self.dropped += 1
            log.error("click batcher: buffer full, dropped the oldest click")
        committed: asyncio.Future[T] | None = loop.create_future() if self._wait else None
        self._pending.append(_Pending(click, committed, answer, loop.time()))
        self._ready.set()
        return committed

    async def _run(self) -> None:
        while not (self._closing and not self._pending and not self._in_flight):
            if not self._pending:
                self._ready.clear()
                await self._ready.wait()
                continue
            # One turn of the loop lets every redirect that is ready join this group.
            await asyncio.sleep(0)
            await self._writers.acquire()
            group = self._pending[: self._batch_size]
            del self._pending[: len(group)]
            task = asyncio.create_task(self._write_group(group))
            self._in_flight.add(task)
            task.add_done_callback(self._write_done)
        if self._in_flight:
            await asyncio.gather(*self._in_flight)

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._ready.set()  # a closing batcher waiting for its last writes can finish

    async def _write_group(self, group: list[_Pending]) -> None:
        """Several groups are written at once (`click_writers`), so one group's commit
        (and fsync) overlaps the next group's statements."""
        # A commit that neither lands nor fails (a lock wait, a frozen server) must not
        # hold redirects: past the timeout they answer, and the clicks stay in this group.
        release = asyncio.get_running_loop().call_later(
            self._timeout, lambda: [self._release(entry) for entry in group]
        )
        try:
            began = time.perf_counter()
            await self._write([entry.click for entry in group])
            self._metrics.commit_seconds.observe(time.perf_counter() - began)
            self._metrics.group_size.observe(len(group))
            self._metrics.recorded.inc(len(group))
            self._failures = 0
            for entry in group:
                self._release(entry)
        except Exception as exc:  # noqa: BLE001 - kept pending, retried
            self._failures += 1
            delay = backoff(self._failures, _RETRY_BASE_SECONDS, _RETRY_MAX_SECONDS)
            log.warning("click batcher: write failed (%s); retry in %.2f s", exc, delay)
            # Redirects waiting longer than the timeout get their answer; their clicks
            # stay queued and are written when the database is back.
            deadline = asyncio.get_running_loop().time() - self._timeout
            for entry in group:
                if entry.since < deadline:
                    self._release(entry)
            self._pending[:0] = group
            self._ready.set()
            await asyncio.sleep(delay)
        finally:
            release.cancel()
            self._writers.release()

    @staticmethod
    def _release(entry: _Pending) -> None:
        if entry.committed is not None and not entry.committed.done():
            entry.committed.set_result(entry.answer)

    async def _write(self, clicks: Sequence[Envelope]) -> None:
        # On the driver's connection: SQLAlchemy's transaction and statement machinery cost
        # more than the statement itself at group sizes of a few dozen clicks.
        lease = self._handoff.lease(LinkClicked.type)
        relay, seconds = (lease.relay, lease.seconds) if lease is not None else (None, None)
        async with driver_connection(self._engine) as driver:
            written = await driver.fetchrow(
                WRITE,
                rows_document([OutboxRow(click.to_bytes()) for click in clicks]),
                relay,
                seconds,
            )
        ids: list[int] = written[0]
        # Rows skipped as already there (a rewrite after an uncertain commit) may hold an
        # older lease: then none is handed over, and they are all claimed in their turn.
        if lease is not None and len(ids) == len(clicks):
            self._handoff.committed(lease, ids, clicks)
