"""The wire form of an event: the same bytes in the outbox, in-process and on Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from app.contracts.base import IntegrationEvent


@dataclass(frozen=True)
class Envelope:
    event_id: UUID
    type: str
    occurred_at: datetime
    key: str
    # The event's fields; or, from the outbox, their JSON text as stored there, which the
    # contract then parses and checks in one pass (no dict in between).
    payload: dict[str, Any] | str

    @classmethod
    def wrap(cls, event: IntegrationEvent) -> Envelope:
        return cls(
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            key=event.partition_key,
            payload=event.model_dump(mode="json"),
        )

    def to_bytes(self) -> bytes:
        # orjson: the envelope is encoded per event on Kafka's path, at a tenth of the json
        # module's time. The stored JSON text goes in as it is: a JSON object already.
        payload = orjson.Fragment(self.payload) if isinstance(self.payload, str) else self.payload
        return orjson.dumps(
            {
                # orjson writes a uuid.UUID itself, not the driver's UUID type.
                "event_id": self.event_id if type(self.event_id) is UUID else str(self.event_id),
                "type": self.type,
                "occurred_at": self.occurred_at,
                "key": self.key,
                "payload": payload,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Decode, or raise ValueError: an undecodable event is parked, never retried."""
        try:
            raw = orjson.loads(data)
            # What cannot be encoded again (orjson reads 1024 levels of nesting and writes
            # 255) could not be parked either: it is undecodable, parked as the bytes it was.
            orjson.dumps(raw)
            return cls(
                event_id=UUID(raw["event_id"]),
                type=str(raw["type"]),
                occurred_at=datetime.fromisoformat(raw["occurred_at"]),
                key=str(raw["key"]),
                payload=dict(raw["payload"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"undecodable event: {exc}") from exc


class Undecodable(ValueError):
    """An envelope no retry can turn into an event: parked at once (or skipped)."""


def decode(
    envelope: Envelope, contracts: Mapping[str, type[IntegrationEvent]], subscriber: str
) -> IntegrationEvent:
    """The event `envelope` carries, checked by the contract of its type among `contracts`
    (those `subscriber` handles). Every subscriber decodes here, so they all agree on
    what is undecodable."""
    contract = contracts.get(envelope.type)
    if contract is None:
        raise Undecodable(f"{subscriber} does not consume {envelope.type}")
    try:
        if isinstance(envelope.payload, str):
            return contract.model_validate_json(envelope.payload)
        return contract.model_validate(envelope.payload)
    except ValidationError as exc:
        raise Undecodable(f"payload does not match {envelope.type}: {exc}") from exc
