"""The suite's own event contract: small, versioned, keyed like the real ones."""

from __future__ import annotations

from typing import ClassVar

from app.contracts.base import IntegrationEvent


class ThingHappened(IntegrationEvent):
    type: ClassVar[str] = "bustest.thing_happened.v1"

    key: str
    seq: int

    @property
    def partition_key(self) -> str:
        return self.key
