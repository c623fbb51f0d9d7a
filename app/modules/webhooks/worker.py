"""The delivery worker: sends due deliveries, signed, and retries the failed ones.

Any number of processes may run it: a delivery is taken with `FOR UPDATE SKIP LOCKED` and
leased (its `next_attempt_at` pushed past the request's timeout) in a transaction that
commits before the request goes out, so no transaction stays open over the network. A
process killed mid-request leaves the delivery to be taken again once the lease ends: a
receiver may get a delivery twice, always under the same `webhook-id`, never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import orjson
from sqlalchemy import Row, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks import Webhook

from app.modules.webhooks.guard import RefusedAddress, guarded_client
from app.modules.webhooks.settings import WebhooksSettings
from app.modules.webhooks.subscribers import payload, subscribed
from app.modules.webhooks.tables import deliveries

log = logging.getLogger(__name__)

_SNIPPET = 200  # of a failed answer's body, kept for its owner to read; no more is stored
_LEASE_MARGIN_SECONDS = 5.0
_CLICKS_PER_FLUSH = 10_000
_MOST_TAKES = 100  # a flush's bound: a million clicks an interval

_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM deliveries
        WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhooks w
    WHERE d.id = due.id AND w.id = d.webhook_id
    RETURNING d.id, d.payload, d.attempts, w.url, w.secret
    """
)
_DELIVERED = text(
    """
    UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),
        last_status_code = :code, last_error = NULL
    WHERE id = :id AND status IN ('pending', 'failed')
    """
)
_FAILED = text(
    """
    UPDATE deliveries SET status = :status, attempts = attempts + 1,
        next_attempt_at = now() + make_interval(secs => :wait),
        last_status_code = :code, last_error = :error
    WHERE id = :id AND status IN ('pending', 'failed')
    """
)
_TAKE_CLICKS = text(
    """
    WITH taken AS (
        SELECT p.click_id FROM pending_clicks p JOIN link_owners o ON o.code = p.code
        ORDER BY p.received_at
        LIMIT :limit
        FOR UPDATE OF p SKIP LOCKED
    )
    DELETE FROM pending_clicks p USING taken, link_owners o
    WHERE p.click_id = taken.click_id AND o.code = p.code
    RETURNING o.owner_id, p.click
    """
)
# Takes the turn to send clicks, unless another process took it less than an interval ago
# (a little less: timers drift). The row lock makes a concurrent taker wait, then see it.
_TAKE_TURN = text(
    """
    INSERT INTO click_flushes (id, flushed_at) VALUES (1, now())
    ON CONFLICT (id) DO UPDATE SET flushed_at = now()
    WHERE click_flushes.flushed_at <= now() - make_interval(secs => :every)
    RETURNING id
    """
)
# Clicks of links never heard of (their link_created was lost to a parked event) go
# unsent rather than piling up.
_FORGET_ORPHANS = text("DELETE FROM pending_clicks WHERE received_at < now() - interval '1 day'")


class DeliveryWorker:
    def __init__(self, engine: AsyncEngine, settings: WebhooksSettings) -> None:
        self._engine = engine
        self._settings = settings
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._client = guarded_client(
            self._settings.allow_private_targets,
            self._settings.concurrency,
            self._settings.timeout_seconds,
        )
        self._tasks = [
            asyncio.create_task(self._deliver_forever(), name="webhooks-deliveries"),
            asyncio.create_task(self._flush_forever(), name="webhooks-clicks"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver_due(self) -> int:
        """Send what is due now, at most `concurrency` at once; returns how many."""
        rows = await self._claim(self._settings.concurrency)
        await asyncio.gather(*(self._attempt(row) for row in rows))
        return len(rows)

    async def _claim(self, limit: int) -> list[Row[Any]]:
        lease = self._deadline() + _LEASE_MARGIN_SECONDS
        async with self._engine.begin() as conn:
            return list((await conn.execute(_CLAIM, {"limit": limit, "lease": lease})).all())

    async def flush_clicks(self) -> int:
        """One `link.clicked` delivery per webhook for the clicks that waited; returns how
        many clicks left the queue.

        A take holds at most `_CLICKS_PER_FLUSH` clicks; when more waited (a busy instance,
        or one account clicking its own links to flood the queue), the rest goes in further
        takes now, not one take an interval: the queue would fall further behind each
        interval, every account's clicks with it, until `_FORGET_ORPHANS` dropped them."""
        async with self._engine.begin() as conn:
            turn = await conn.execute(
                _TAKE_TURN, {"every": self._settings.click_batch_seconds * 0.9}
            )
            if turn.first() is None:
                return 0
            taken = await self._send_clicks(conn)
            await conn.execute(_FORGET_ORPHANS)
        total, takes = taken, 1
        while taken == _CLICKS_PER_FLUSH and takes < _MOST_TAKES:
            async with self._engine.begin() as conn:
                taken = await self._send_clicks(conn)
            total, takes = total + taken, takes + 1
        return total

    async def _send_clicks(self, conn: AsyncConnection) -> int:
        taken = (await conn.execute(_TAKE_CLICKS, {"limit": _CLICKS_PER_FLUSH})).all()
        by_owner: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
        for owner_id, click in taken:
            by_owner[owner_id].append(click)
        now = datetime.now(UTC)
        rows = []
        for owner_id, clicks in by_owner.items():
            clicks.sort(key=lambda click: click["occurred_at"])
            limit = self._settings.click_batch_size
            body = payload(
                "link.clicked",
                now,
                {"clicks": clicks[:limit], "omitted": max(0, len(clicks) - limit)},
            )
            for webhook_id in await subscribed(conn, owner_id, "link.clicked"):
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "webhook_id": webhook_id,
                        "event_type": "link.clicked",
                        "payload": body,
                    }
                )
        if rows:
            await conn.execute(insert(deliveries).values(rows))
        return len(taken)

    async def _attempt(self, row: Row[Any]) -> None:
        assert self._client is not None
        body = orjson.dumps(row.payload)
        # Timezone-aware UTC: standardwebhooks mis-signs a naive local time.
        now = datetime.now(UTC)
        msg_id = str(row.id)
        headers = {
            "content-type": "application/json",
            "user-agent": "encurta-webhooks",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(row.secret).sign(msg_id, now, body),
        }
        code: int | None = None
        error: str | None
        try:
            # httpx times each phase; the lease needs a bound on the whole request.
            async with (
                asyncio.timeout(self._deadline()),
                self._client.stream("POST", row.url, content=body, headers=headers) as r,
            ):
                code = r.status_code
                error = None if 200 <= code < 300 else f"HTTP {code}: {await _snippet(r)}"
        except RefusedAddress as exc:
            error = f"refused: {exc}"
        except (httpx.TimeoutException, TimeoutError):
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:_SNIPPET] or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - recorded on the delivery, retried
            log.warning("webhook delivery %s failed unexpectedly: %r", msg_id, exc)
            error = type(exc).__name__
        await self._record(row, code, error)

    def _deadline(self) -> float:
        """The most one request may take, headers to the end of what is read of the body."""
        return self._settings.timeout_seconds * 2

    async def _record(self, row: Row[Any], code: int | None, error: str | None) -> None:
        async with self._engine.begin() as conn:
            if error is None:
                await conn.execute(_DELIVERED, {"id": row.id, "code": code})
                return
            schedule = self._settings.retry_schedule_seconds
            attempt = row.attempts + 1
            parked = attempt > len(schedule)
            # Full jitter: anywhere up to the step, so receivers back from an outage are
            # not hit by every delivery at once.
            wait = 0.0 if parked else random.uniform(0, schedule[attempt - 1])  # noqa: S311
            await conn.execute(
                _FAILED,
                {
                    "id": row.id,
                    "status": "parked" if parked else "failed",
                    "wait": wait,
                    "code": code,
                    "error": error.replace("\x00", "")[:500],
                },
            )

    async def _deliver_forever(self) -> None:
        """Keeps up to `concurrency` attempts in flight, claiming more as each one ends.

        Not in rounds that wait for their slowest attempt: then one receiver answering at
        its timeout (a tarpit) paced every account's deliveries to its own."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = self._settings.concurrency - len(in_flight)
                rows: list[Row[Any]] = []
                if free > 0:
                    try:
                        rows = await self._claim(free)
                    except Exception as exc:  # noqa: BLE001 - the database is away: try again
                        log.warning("webhook deliveries: %s", exc)
                for row in rows:
                    task = asyncio.create_task(self._attempt_logged(row))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if len(rows) < free:  # nothing more is due: wait for the next look
                    await asyncio.sleep(self._settings.poll_seconds)
                elif in_flight and len(rows) == free:  # every slot taken: wait for one
                    await asyncio.wait(
                        set(in_flight),
                        timeout=self._settings.poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _attempt_logged(self, row: Row[Any]) -> None:
        """An attempt on its own task: a failure to record it (the database away) is
        logged here, as nobody awaits the task; the lease then ends and it is retried."""
        try:
            await self._attempt(row)
        except Exception as exc:  # noqa: BLE001
            log.warning("webhook delivery %s not recorded: %s", row.id, exc)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.click_batch_seconds)
            try:
                await self.flush_clicks()
            except Exception as exc:  # noqa: BLE001 - the clicks wait for the next round
                log.warning("webhook clicks: %s", exc)


async def _snippet(response: httpx.Response) -> str:
    """The start of an answer's body, read no further."""
    taken = b""
    async for chunk in response.aiter_raw():
        taken += chunk
        if len(taken) >= _SNIPPET:
            break
    return taken[:_SNIPPET].decode(errors="replace").replace("\x00", "")
