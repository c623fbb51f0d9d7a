"""Waiting for an eventual state: tests assert on what happened, never on how long it took.

The timeout is a guard against a hang on a busy machine, not a measure of speed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

GUARD = 60.0


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    done: Callable[[T], bool] = bool,
    what: str = "the expected state",
    timeout: float = GUARD,
) -> T:
    """Poll `probe` until `done` says yes, and return that value; fail with the last value
    once the guard has run out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not so after {timeout:.0f} s; last: {value!r}")
        await asyncio.sleep(0.02)
