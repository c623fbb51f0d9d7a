"""The outbox relay: publishes a module's committed outbox rows, and only then marks them sent.

One hop, one transaction at a time, none held across the hop. A batch is claimed with a
lease (`claimed_by`, `claimed_until`) in a short transaction that commits; it is published
outside any transaction of the producer's database (in-process, the consumers commit in
their own databases meanwhile); it is marked sent in another short transaction. So a slow
consumer never keeps a transaction open on the producer's tables. While a publish lasts the
relay renews its lease; a relay that dies mid-publish leaves its rows to be claimed again
once the lease has expired, and the consumers' inboxes absorb the duplicates. A relay that
is stopped gives its lease back at once.

Rows a hot writer leased to the relay as it wrote them are handed over in memory once
committed (handoff.py): published from there, then deleted; the claim passes leave them
alone while the lease runs.

A relay claims only the event types its module declares in `publishes`: no consumer hears
of an event nobody said would exist. A row of another type waits, unsent and unclaimed, for
a relay that declares it (in a rolling deploy, a newer replica's), and the relay says how
many such rows there are each time it cleans up.

Claims use `FOR UPDATE SKIP LOCKED` (held only for the claiming statement), so replicas
share the work without claiming a row twice at once, and unsent rows are found by
`sent_at IS NULL`, never by "id greater than the last one": ids commit out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import uuid
from collections.abc import Iterable, Sequence

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.handoff import HandOff, Lease
from app.bus.outbox import NOTIFY_CHANNEL
from app.bus.protocol import Bus
from app.bus.retry import backoff
from app.bus.settings import DeliverySettings
from app.contracts.base import IntegrationEvent
from app.kernel.database import asyncpg_connect, driver_connection

log = logging.getLogger(__name__)

_ID = operator.itemgetter(0)

# The database's clock decides leases, so replicas whose clocks differ agree on them. Claim
# and mark run on the driver's connection, each statement its own transaction: SQLAlchemy's
# statement and row machinery cost more per event than the statements.
_CLAIM = """
    UPDATE outbox SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2)
    WHERE id IN (
        SELECT id FROM outbox
        WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
          AND ($4::text[] IS NULL OR type = ANY($4::text[]))
        ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, event_id, type, key, payload::text AS payload, occurred_at
"""
_RENEW = text(
    "UPDATE outbox SET claimed_until = now() + make_interval(secs => :lease) "
    "WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :relay AND sent_at IS NULL"
)
# Whoever holds the lease now: the transport took the rows, so they are sent.
_MARK_SENT = """
    UPDATE outbox SET sent_at = now(), attempts = attempts + 1, claimed_by = NULL,
                      claimed_until = NULL
    WHERE id = ANY($1::bigint[]) AND sent_at IS NULL
"""
# Rows handed over are not kept once sent (see handoff.py): a delete writes no new row
# version and no index entry, where the mark above writes both.
_DELETE_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND sent_at IS NULL"
_MARK_FAILED = text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error, claimed_by = NULL, "
    "claimed_until = NULL "
    "WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :relay"
)
_UNDECLARED = text(
    "SELECT type, count(*) AS n FROM outbox "
    "WHERE sent_at IS NULL AND NOT (type = ANY(CAST(:declared AS text[]))) GROUP BY type"
)
_RELEASE = text(
    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL "
    "WHERE claimed_by = :relay AND sent_at IS NULL"
)
_CLEAN = text(
    """
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => :retention)
        LIMIT 10000
    )
    """
)
_CLEAN_EVERY_SECONDS = 60.0
# How long a claim lasts unless renewed: how long the rows of a relay that died mid-publish
# wait before another relay (or its restart) sends them again. Renewed every third of it.
LEASE_SECONDS = 30.0
_RELEASE_TIMEOUT_SECONDS = 5.0


class OutboxRelay:
    def __init__(
        self,
        module: str,
        engine: AsyncEngine,
        bus: Bus,
        settings: DeliverySettings,
        lease_seconds: float = LEASE_SECONDS,
        publishes: Iterable[type[IntegrationEvent]] | None = None,
        handoff: HandOff | None = None,
    ) -> None:
        """`publishes`: the only event types this module may send (None: any, for tests of
        the plumbing alone). `handoff`: where the module's hot writers hand rows over."""
        self.module = module
        self._declared = None if publishes is None else sorted({e.type for e in publishes})
        self.id = uuid.uuid4()  # the name of this relay's leases
        self._lease = lease_seconds
        self._engine = engine
        self._bus = bus
        self._settings = settings
        self._handoff = handoff
        self._wake = asyncio.Event()
        self._claim_due = True  # a claim pass is owed: at start, on NOTIFY, at each poll
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.module}")
        if self._handoff is not None:
            self._handoff.open(Lease(self.id, self._lease), self._declared, self._wake.set)

    async def stop(self) -> None:
        if self._handoff is not None:
            self._handoff.close()
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            # Waited for without swallowing a cancellation of our own caller.
            await asyncio.wait([self._task])
            self._task = None
            # A publish cut short: its rows are sent by the next relay pass (the app's
            # final drain, or a restart) instead of after the lease.
            await self._release()
        await self._close_listener()

    async def drain(self) -> int:
        """Publish every unsent row now; returns how many were sent. Tests and tools use it."""
        total = 0
        while sent := await self.relay_batch():
            total += sent
        return total

    async def relay_batch(self) -> int:
        """Claim one batch, publish it, mark it sent. Returns the number of rows sent."""
        async with driver_connection(self._engine) as driver:
            rows = await driver.fetch(
                _CLAIM,
                self.id,
                self._lease,
                self._settings.relay_batch_size,
                self._declared,
            )
        if not rows:
            return 0
        rows.sort(key=_ID)
        # No transaction of the producer's database is open from here to the mark.
        envelopes = [
            Envelope(
                event_id=event_id, type=type_, occurred_at=occurred_at, key=key, payload=payload
            )
            for _, event_id, type_, key, payload, occurred_at in rows
        ]
        await self._send([row[0] for row in rows], envelopes)
        return len(rows)

    async def _relay_handed(self) -> int:
        """Publish one batch of the rows handed over, then delete them; returns its size."""
        if self._handoff is None:
            return 0
        ids, envelopes = self._handoff.take(self._settings.relay_batch_size)
        if ids:
            await self._send(ids, envelopes, sent=_DELETE_SENT)
        return len(ids)

    async def _send(
        self, ids: list[int], envelopes: Sequence[Envelope], sent: str = _MARK_SENT
    ) -> None:
        """Publish the rows `ids` (leased to this relay) as `envelopes`, then record them
        `sent` (marked, or deleted)."""
        try:
            await self._publish(ids, envelopes)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            # Recorded, and the lease given back: the next pass retries the rows.
            async with self._engine.begin() as conn:
                await conn.execute(_MARK_FAILED, {"ids": ids, "error": error, "relay": self.id})
            raise PublishFailed(str(exc)) from exc
        async with driver_connection(self._engine) as driver:
            await driver.execute(sent, ids)

    async def _publish(self, ids: list[int], envelopes: Sequence[Envelope]) -> None:
        """Publish, renewing the lease on `ids` for as long as the transport takes."""
        renewing = asyncio.create_task(self._renew(ids), name=f"outbox-lease-{self.module}")
        try:
            await self._bus.publish(envelopes)
        finally:
            renewing.cancel()
            await asyncio.wait([renewing])

    async def _renew(self, ids: list[int]) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(_RENEW, {"ids": ids, "relay": self.id, "lease": self._lease})
            except Exception as exc:  # noqa: BLE001 - an expired lease only costs duplicates
                log.warning("relay %s: lease not renewed (%s)", self.module, exc)

    async def _release(self) -> None:
        """Give back this relay's leases on rows not sent (best effort: they expire)."""
        try:
            async with asyncio.timeout(_RELEASE_TIMEOUT_SECONDS), self._engine.begin() as conn:
                await conn.execute(_RELEASE, {"relay": self.id})
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself
            log.warning("relay %s: lease not given back (%s)", self.module, exc)

    async def clean(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_CLEAN, {"retention": self._settings.outbox_retention_seconds})
            if self._declared is None:
                return
            waiting = (await conn.execute(_UNDECLARED, {"declared": self._declared})).all()
        for row in waiting:
            log.warning(
                "relay %s: %d outbox rows of type %s wait for a relay that publishes it "
                "(not in this module's publishes)",
                self.module,
                row.n,
                row.type,
            )

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        next_clean = loop.time()
        # The poll is the guarantee (NOTIFY is a hint): it comes round on the clock, even
        # while hand-overs keep the relay busy or wake it without a pause.
        next_poll = loop.time()
        while not self._stopping:
            await self._ensure_listener()
            self._wake.clear()
            try:
                more = await self._relay_handed() == self._settings.relay_batch_size
                if self._claim_due or loop.time() >= next_poll:
                    self._claim_due = False
                    next_poll = loop.time() + self._settings.relay_poll_seconds
                    if await self.relay_batch() == self._settings.relay_batch_size:
                        self._claim_due = more = True  # more is waiting
                failures = 0
                if loop.time() >= next_clean:
                    await self.clean()
                    next_clean = loop.time() + _CLEAN_EVERY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any failure
                failures += 1
                self._claim_due = True  # rows given back by a failed publish are claimed
                delay = backoff(
                    failures,
                    self._settings.backoff_base_seconds,
                    self._settings.backoff_max_seconds,
                )
                log.warning("relay %s: %s; retrying in %.1f s", self.module, exc, delay)
                await asyncio.sleep(delay)
                continue
            if more or (
                self._handoff is not None and len(self._handoff) >= self._settings.relay_batch_size
            ):
                continue  # a full batch waits: no reason to wait for more
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives together with the wake-up, and stop() would wait forever.
            try:
                async with asyncio.timeout(max(0.0, next_poll - loop.time())):
                    await self._wake.wait()
            except TimeoutError:
                continue  # the poll is due
            await asyncio.sleep(self._settings.relay_coalesce_seconds)

    async def _ensure_listener(self) -> None:
        """LISTEN for commits of new rows. NOTIFY is only a hint; the poll is the guarantee."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg_connect(self._engine)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
        except Exception as exc:  # noqa: BLE001 - polling still works without it
            log.debug("relay %s: no LISTEN connection (%s); polling", self.module, exc)
            await self._close_listener()

    def _notified(self, *args: object) -> None:
        self._claim_due = True
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None


class PublishFailed(RuntimeError):
    """The transport did not take the batch; the rows stay unsent and are retried."""
