"""The Bus protocol that both transports (in-process, Kafka) implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from app.bus.envelope import Envelope

BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once the transport took responsibility for every envelope."""

    def subscribe(self, consumer: str, event_type: str, handler: BatchHandler) -> None:
        """One subscription per (consuming module, event type)."""
