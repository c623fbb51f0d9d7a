"""The in-process transport: pyee inside this process, publishing awaits the handlers.

It still goes through the outbox: the relay publishes here and marks rows sent only once
every subscribed consumer has committed, so a crash loses nothing in-process either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from pyee import EventEmitter

from app.bus.envelope import Envelope
from app.bus.protocol import Subscriber

_Deliver = Callable[[Sequence[Envelope]], Awaitable[None]]


class InProcessBus:
    def __init__(self) -> None:
        self._emitter = EventEmitter()
        self._subscriptions: set[tuple[str, str]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._emitter.remove_all_listeners()
        self._subscriptions.clear()

    def subscribe(self, subscriber: Subscriber) -> None:
        for event_type in subscriber.event_types:
            if (subscriber.name, event_type) in self._subscriptions:
                raise ValueError(f"{subscriber.name} already subscribes to {event_type}")
            self._subscriptions.add((subscriber.name, event_type))
            self._emitter.add_listener(event_type, subscriber.deliver)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        # One call per consumer with its events in publish order, so a consumer of several
        # types still sees one link's events in order, as one batch.
        batches: dict[_Deliver, list[Envelope]] = {}
        for envelope in envelopes:
            for deliver in self._emitter.listeners(envelope.type):
                batches.setdefault(deliver, []).append(envelope)
        results = await asyncio.gather(
            *(deliver(batch) for deliver, batch in batches.items()), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
