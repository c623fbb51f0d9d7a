"""The in-process transport: pyee inside this process, publishing awaits the handlers.

It still goes through the outbox: the relay publishes here and marks rows sent only once
every subscribed consumer has committed, so a crash loses nothing in-process either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pyee import EventEmitter

from app.bus.envelope import Envelope
from app.bus.protocol import BatchHandler


class InProcessBus:
    def __init__(self) -> None:
        self._emitter = EventEmitter()
        self._subscriptions: set[tuple[str, str]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._emitter.remove_all_listeners()
        self._subscriptions.clear()

    def subscribe(self, consumer: str, event_type: str, handler: BatchHandler) -> None:
        if (consumer, event_type) in self._subscriptions:
            raise ValueError(f"{consumer} already subscribes to {event_type}")
        self._subscriptions.add((consumer, event_type))
        self._emitter.add_listener(event_type, handler)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        # One call per consumer with its events in publish order, so a consumer of several
        # types still sees one link's events in order, as one batch.
        batches: dict[BatchHandler, list[Envelope]] = {}
        for envelope in envelopes:
            for handler in self._emitter.listeners(envelope.type):
                batches.setdefault(handler, []).append(envelope)
        results = await asyncio.gather(
            *(handler(batch) for handler, batch in batches.items()), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
