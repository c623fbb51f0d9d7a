"""Shutting down: the shortener's outbox relay stops when asked.

The relay idles in `asyncio.wait_for(wake.wait(), poll)`; a NOTIFY (any commit that wrote
an outbox row: a click, a new link) sets `wake`. On Python 3.11, `wait_for` returns
normally when it is cancelled in the same loop iteration in which the awaited event
completes, so the cancellation that `stop()` sends can be swallowed: the relay loops on and
`stop()`, awaiting it, never returns (the app's shutdown hangs; seen here as test runs
stalling in teardown under load). The NOTIFY is simulated by calling the LISTEN callback at
the moment `stop()` is called, which makes the race deterministic.
"""

from __future__ import annotations

import asyncio
from types import CoroutineType
from typing import Any

import httpx

from tests.conftest import relay_of
from tests.support.waiting import eventually

# A guard against a hang, never a measure of speed: the machine may be busy.
GUARD = 30.0


def awaited_chain(task: asyncio.Task[Any]) -> list[str]:
    """The coroutines a suspended task is awaiting, outermost first."""
    chain: list[str] = []
    coro: Any = task.get_coro()
    while isinstance(coro, CoroutineType):
        chain.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return chain


async def until_idle(task: asyncio.Task[Any]) -> None:
    """Until the relay waits for a wake-up (it has drained the empty outbox): its loop awaits
    the wake event, directly or through `wait_for` (the form this test guards against)."""
    idle = (["OutboxRelay._run", "Event.wait"], ["OutboxRelay._run", "wait_for"])
    await eventually(
        lambda: awaited_chain(task)[:2],
        lambda chain: chain in idle or task.done(),
        "the relay idle",
        timeout=GUARD,
    )
    assert not task.done(), "the relay's task ended"


async def test_the_relay_stops_even_when_a_notify_arrives_as_it_is_stopped(
    client: httpx.AsyncClient,
) -> None:
    relay = relay_of(client, "shortener")
    task = relay._task
    assert task is not None and not task.done()
    await until_idle(task)

    # A watchdog cancels the relay's task a second time, long after a stop() that honours
    # the first cancellation has returned: a swallowed first cancellation shows up as the
    # watchdog having fired (and a slow test) instead of a hung one.
    rescued: list[bool] = []

    def watchdog() -> None:
        rescued.append(True)
        task.cancel()

    timer = asyncio.get_running_loop().call_later(GUARD, watchdog)
    relay._notified()  # a NOTIFY comes in ...
    await relay.stop()  # ... as the app shuts down
    timer.cancel()

    assert task.done()
    assert not rescued, (
        f"stop() returned only after the watchdog's second cancellation at "
        f"{GUARD:.0f} s: the first cancellation was swallowed"
    )
