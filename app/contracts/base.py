"""What every integration event carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


class IntegrationEvent(BaseModel):
    """A fact one module tells the others. `type` names it with its version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: ClassVar[str]

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=_now)

    @property
    def partition_key(self) -> str:
        """Events with one key are delivered in order; subclasses choose the key."""
        return str(self.event_id)
