"""Events the auth module publishes."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from app.contracts.base import IntegrationEvent


class UserDeleted(IntegrationEvent):
    """The account is gone: every module forgets what belongs to it."""

    type: ClassVar[str] = "auth.user_deleted.v1"

    user_id: UUID

    @property
    def partition_key(self) -> str:
        return str(self.user_id)
