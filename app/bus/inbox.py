"""The consumer side: an idempotent inbox, retries, and parking for what cannot be handled.

A consuming module declares handlers, `async def handle(conn, events)`, one per event type;
this file does the rest. A batch of events is applied in one transaction of the module's
own database, together with the insert of their ids into `processed_events`: an id that is
already there is skipped, so a redelivered event changes nothing. A handler that skips an
applied id by itself (its table is keyed by the event id: analytics' clicks) is declared
`deduplicating`, and its events' ids are not recorded at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bus.envelope import Envelope, Undecodable, decode
from app.bus.retry import backoff
from app.bus.settings import DeliverySettings
from app.contracts.base import IntegrationEvent

if TYPE_CHECKING:
    from app.bus.metrics import BusMetrics

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, Sequence[Any]], Awaitable[None]]

_BATCH_ATTEMPTS = 2  # then each event is tried on its own, so one bad event is isolated
_PURGE_EVERY_SECONDS = 600.0


def inbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """`processed_events` and `parked_events`, placed in each consuming module's database."""
    processed = Table(
        "processed_events",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("ttl_expires_at", DateTime(timezone=True), nullable=False),
        Index("processed_events_ttl", "ttl_expires_at"),
    )
    parked = Table(
        "parked_events",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("event_id", Uuid),
        Column("type", Text),
        # The envelope as received, even when it cannot be decoded.
        Column("envelope", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column(
            "first_failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column(
            "last_failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
    )
    return processed, parked


_CLAIM_IDS = text(
    """
    INSERT INTO processed_events (event_id, type, ttl_expires_at)
    SELECT id, t, now() + make_interval(secs => :ttl)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS batch(id, t)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)
_PARK = text(
    """
    INSERT INTO parked_events (id, event_id, type, envelope, error, attempts)
    VALUES (:id, :event_id, :type, :envelope, :error, :attempts)
    """
)
_PURGE = text(
    """
    DELETE FROM processed_events WHERE event_id IN (
        SELECT event_id FROM processed_events WHERE ttl_expires_at < now() LIMIT 10000
    )
    """
)


def _text_of(envelope: Envelope) -> str:
    """The envelope as parked; parking must not fail on what cannot be encoded again."""
    try:
        return envelope.to_bytes().decode()
    except (TypeError, ValueError) as exc:
        return f"(not encodable: {exc}) {envelope!r}"


@dataclass(frozen=True)
class _Item:
    envelope: Envelope
    event: IntegrationEvent


@dataclass(frozen=True)
class ParkedEvent:
    id: UUID
    consumer: str
    event_id: UUID | None
    type: str | None
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


class Consumer:
    """Delivers batches of envelopes to one module's handlers, exactly once in effect."""

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        handlers: Mapping[type[IntegrationEvent], Handler],
        settings: DeliverySettings,
        deduplicating: Iterable[type[IntegrationEvent]] = (),
        metrics: BusMetrics | None = None,
    ) -> None:
        """`deduplicating`: event types whose handler skips, by itself, an event id it has
        applied; their ids are not recorded in `processed_events`. `metrics`: where the
        batches handed over are counted (sizes, lag)."""
        self.name = name
        self._metrics = metrics
        self._engine = engine
        self._settings = settings
        self._contracts = {contract.type: contract for contract in handlers}
        self._handlers = {contract.type: handler for contract, handler in handlers.items()}
        self._deduplicating = frozenset(contract.type for contract in deduplicating)
        self._purge_task: asyncio.Task[None] | None = None

    @property
    def event_types(self) -> list[str]:
        return list(self._handlers)

    async def start(self) -> None:
        self._purge_task = asyncio.create_task(self._purge_forever(), name=f"inbox-{self.name}")

    async def stop(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
            self._purge_task = None

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Apply a batch. Returns once every event is applied, skipped or parked; raises
        only when not even parking works (the database is down): the sender retries."""
        if self._metrics is not None:
            self._metrics.delivered(self.name, envelopes)
        items: list[_Item] = []
        for envelope in envelopes:
            try:
                items.append(self._decode(envelope))
            except Undecodable as exc:
                await self._park(_text_of(envelope), envelope, str(exc), attempts=1)
        if not items:
            return
        try:
            await self._retrying(lambda: self._apply(items), _BATCH_ATTEMPTS)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the culprit below
            log.warning(
                "consumer %s: batch of %d failed (%s); one by one", self.name, len(items), exc
            )
        for item in items:
            try:
                await self._retrying(
                    functools.partial(self._apply, [item]), self._settings.max_attempts
                )
            except Exception as exc:  # noqa: BLE001 - parked with its error
                await self._park(
                    _text_of(item.envelope),
                    item.envelope,
                    f"{type(exc).__name__}: {exc}",
                    attempts=self._settings.max_attempts,
                )

    async def deliver_raw(self, data: bytes) -> None:
        """For transports that carry bytes: an envelope that cannot be read is parked."""
        try:
            envelope = Envelope.from_bytes(data)
        except ValueError as exc:
            await self._park(data.decode(errors="replace"), None, str(exc), attempts=1)
            return
        await self.deliver([envelope])

    async def replay(self, parked_id: UUID) -> bool:
        """Apply a parked event again. On success it is unparked (in the same transaction),
        and it counts once: the inbox still guards it. Returns False if it failed again."""
        try:
            async with self._engine.begin() as conn:
                row = (
                    await conn.execute(
                        text("SELECT envelope FROM parked_events WHERE id = :id FOR UPDATE"),
                        {"id": parked_id},
                    )
                ).one_or_none()
                if row is None:
                    raise KeyError(str(parked_id))
                envelope = Envelope.from_bytes(row.envelope.encode())
                await self._apply_in(conn, [self._decode(envelope)])
                await conn.execute(
                    text("DELETE FROM parked_events WHERE id = :id"), {"id": parked_id}
                )
            return True
        except KeyError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the parked row
            async with self._engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE parked_events SET attempts = attempts + 1, error = :error, "
                        "last_failed_at = now() WHERE id = :id"
                    ),
                    {"id": parked_id, "error": f"{type(exc).__name__}: {exc}"[:4000]},
                )
            return False

    async def parked(self) -> list[ParkedEvent]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, event_id, type, error, attempts, first_failed_at, "
                        "last_failed_at FROM parked_events ORDER BY first_failed_at, id"
                    )
                )
            ).all()
        return [ParkedEvent(consumer=self.name, **row._asdict()) for row in rows]

    async def purge_expired(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_PURGE)

    # internals

    def _decode(self, envelope: Envelope) -> _Item:
        return _Item(envelope=envelope, event=decode(envelope, self._contracts, self.name))

    async def _apply(self, items: Sequence[_Item]) -> None:
        async with self._engine.begin() as conn:
            await self._apply_in(conn, items)

    async def _apply_in(self, conn: AsyncConnection, items: Sequence[_Item]) -> None:
        unique = list({item.envelope.event_id: item for item in items}.values())
        recorded = [item for item in unique if item.envelope.type not in self._deduplicating]
        fresh: set[UUID] = set()
        if recorded:
            claimed = await conn.execute(
                _CLAIM_IDS,
                {
                    "ids": [item.envelope.event_id for item in recorded],
                    "types": [item.envelope.type for item in recorded],
                    "ttl": self._settings.inbox_ttl_seconds,
                },
            )
            fresh = {row.event_id for row in claimed}
        run: list[_Item] = []
        for item in unique:
            checked_by_handler = item.envelope.type in self._deduplicating
            if not checked_by_handler and item.envelope.event_id not in fresh:
                continue  # already processed: a redelivery
            if run and run[-1].envelope.type != item.envelope.type:
                await self._handle(conn, run)
                run = []
            run.append(item)
        if run:
            await self._handle(conn, run)

    async def _handle(self, conn: AsyncConnection, run: Sequence[_Item]) -> None:
        handler = self._handlers[run[0].envelope.type]
        await handler(conn, [item.event for item in run])

    async def _retrying(self, attempt_once: Callable[[], Awaitable[None]], attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await attempt_once()
                return
            except Exception:
                if attempt == attempts:
                    raise
                await asyncio.sleep(
                    backoff(
                        attempt,
                        self._settings.backoff_base_seconds,
                        self._settings.backoff_max_seconds,
                    )
                )

    async def _park(self, raw: str, envelope: Envelope | None, error: str, attempts: int) -> None:
        log.error(
            "consumer %s: parking event %s (%s)",
            self.name,
            envelope.event_id if envelope else "?",
            error[:500],
        )
        # PostgreSQL text cannot hold NUL: a message carrying one must still be parkable.
        raw = raw.replace("\x00", "\\u0000")
        error = error.replace("\x00", "\\u0000")
        async with self._engine.begin() as conn:
            await conn.execute(
                _PARK,
                {
                    "id": uuid.uuid4(),
                    "event_id": envelope.event_id if envelope else None,
                    "type": envelope.type.replace("\x00", "") if envelope else None,
                    "envelope": raw,
                    "error": error[:4000],
                    "attempts": attempts,
                },
            )

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.purge_expired()
            except Exception as exc:  # noqa: BLE001 - try again next period
                log.warning("consumer %s: purge failed: %s", self.name, exc)
            await asyncio.sleep(_PURGE_EVERY_SECONDS)
