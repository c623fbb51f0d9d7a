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
import time

import httpx

from tests.conftest import relay_of


async def test_the_relay_stops_even_when_a_notify_arrives_as_it_is_stopped(
    client: httpx.AsyncClient,
) -> None:
    relay = relay_of(client, "shortener")
    await asyncio.sleep(0.3)  # the relay has drained the empty outbox and idles
    task = relay._task
    assert task is not None and not task.done()

    # A watchdog cancels the relay's task a second time after 2 s, so that a swallowed
    # first cancellation shows up as a slow stop() instead of a hung test.
    watchdog = asyncio.get_running_loop().call_later(2.0, task.cancel)
    relay._notified()  # a NOTIFY comes in ...
    started = time.monotonic()
    await relay.stop()  # ... as the app shuts down
    elapsed = time.monotonic() - started
    watchdog.cancel()

    assert task.done()
    assert elapsed < 1, f"stop() took {elapsed:.1f} s: the first cancellation was swallowed"
