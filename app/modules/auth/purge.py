"""The periodic purge of refresh-token rows nothing needs any more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicPurge:
    """Runs `purge` once at start-up (awaited), then every `interval_seconds` in a task."""

    def __init__(self, purge: Callable[[], Awaitable[int]], interval_seconds: float) -> None:
        self._purge = purge
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.run_once()
        self._task = asyncio.create_task(self._forever(), name="auth-refresh-token-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        try:
            deleted = await self._purge()
        except Exception as exc:  # noqa: BLE001 - a purge can wait for the next period
            # The first line only: the statement holds no user data, but keep logs short.
            first_line = (str(exc).splitlines() or [""])[0][:200]
            log.warning("auth: refresh-token purge failed: %s: %s", type(exc).__name__, first_line)
            return
        if deleted:
            log.info("auth: purged %d refresh-token rows", deleted)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.run_once()
