"""Events any module publishes about who called it."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from app.contracts.base import IntegrationEvent


class ApiKeyUsed(IntegrationEvent):
    """A module admitted an API key (told at most once a minute per key and module), so
    auth can show its owner when each key was last used."""

    type: ClassVar[str] = "access.api_key_used.v1"

    key_id: UUID
    user_id: UUID
    used_at: datetime

    @property
    def partition_key(self) -> str:
        return str(self.key_id)
