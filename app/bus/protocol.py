"""The Bus protocol that both transports (in-process, Kafka) implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.bus.envelope import Envelope


class Subscriber(Protocol):
    """A consuming module's side of the bus (app.bus.inbox.Consumer implements it)."""

    name: str

    @property
    def event_types(self) -> list[str]: ...

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Apply a batch exactly once in effect; raise only if it could not be recorded."""

    async def deliver_raw(self, data: bytes) -> None:
        """A message that may not even be an envelope: decoded, or parked."""


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once the transport took responsibility for every envelope."""

    def subscribe(self, subscriber: Subscriber) -> None:
        """One subscription per (consuming module, event type), made before `start`."""
