"""The outbox relay: publishes a module's committed outbox rows, and only then marks them sent.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas share the work without sending
a row twice at once, and unsent rows are found by `sent_at IS NULL`, never by "id greater
than the last one": ids commit out of order. A crash between publish and mark re-sends the
rows on restart; the consumers' inboxes absorb the duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.outbox import NOTIFY_CHANNEL
from app.bus.protocol import Bus
from app.bus.settings import DeliverySettings
from app.kernel.database import asyncpg_connect

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    SELECT id, event_id, type, key, payload, occurred_at FROM outbox
    WHERE sent_at IS NULL ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)
_MARK_SENT = text("UPDATE outbox SET sent_at = now(), attempts = attempts + 1 "
                  "WHERE id = ANY(CAST(:ids AS bigint[]))")
_MARK_FAILED = text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error "
    "WHERE id = ANY(CAST(:ids AS bigint[]))"
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


def backoff(attempt: int, settings: DeliverySettings) -> float:
    """Exponential, capped, with full jitter so that retries of many workers spread out."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


class OutboxRelay:
    def __init__(
        self, module: str, engine: AsyncEngine, bus: Bus, settings: DeliverySettings
    ) -> None:
        self.module = module
        self._engine = engine
        self._bus = bus
        self._settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.module}")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            # Waited for without swallowing a cancellation of our own caller.
            await asyncio.wait([self._task])
            self._task = None
        await self._close_listener()

    async def drain(self) -> int:
        """Publish every unsent row now; returns how many were sent. Tests and tools use it."""
        total = 0
        while sent := await self.relay_batch():
            total += sent
        return total

    async def relay_batch(self) -> int:
        """Claim one batch, publish it, mark it sent. Returns the number of rows sent."""
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(_CLAIM, {"limit": self._settings.relay_batch_size})
            ).all()
            if not rows:
                return 0
            envelopes = [
                Envelope(
                    event_id=row.event_id,
                    type=row.type,
                    occurred_at=row.occurred_at,
                    key=row.key,
                    payload=row.payload,
                )
                for row in rows
            ]
            ids = [row.id for row in rows]
            try:
                await self._bus.publish(envelopes)
            except Exception as exc:  # noqa: BLE001 - recorded on the rows, retried later
                failure: Exception | None = exc
                error = f"{type(exc).__name__}: {exc}"[:2000]
                await conn.execute(_MARK_FAILED, {"ids": ids, "error": error})
            else:
                failure = None
                await conn.execute(_MARK_SENT, {"ids": ids})
        # Raised after the block, so the failure count on the rows is committed.
        if failure is not None:
            raise PublishFailed(str(failure)) from failure
        return len(rows)

    async def clean(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_CLEAN, {"retention": self._settings.outbox_retention_seconds})

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        next_clean = loop.time()
        while not self._stopping:
            await self._ensure_listener()
            self._wake.clear()
            try:
                sent = await self.relay_batch()
                failures = 0
                if loop.time() >= next_clean:
                    await self.clean()
                    next_clean = loop.time() + _CLEAN_EVERY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any failure
                failures += 1
                delay = backoff(failures, self._settings)
                log.warning("relay %s: %s; retrying in %.1f s", self.module, exc, delay)
                await asyncio.sleep(delay)
                continue
            if sent == self._settings.relay_batch_size:
                continue  # more is waiting
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives together with the wake-up, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.relay_poll_seconds):
                    await self._wake.wait()
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
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None


class PublishFailed(RuntimeError):
    """The transport did not take the batch; the rows stay unsent and are retried."""
