"""Events the auth module publishes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from app.contracts.base import IntegrationEvent


class UserDeleted(IntegrationEvent):
    """The account is gone: every module forgets what belongs to it."""

    type: ClassVar[str] = "auth.user_deleted.v1"

    user_id: UUID

    @property
    def partition_key(self) -> str:
        return str(self.user_id)


class _AccountEvent(IntegrationEvent):
    user_id: UUID

    @property
    def partition_key(self) -> str:
        return str(self.user_id)


class AccessChanged(_AccountEvent):
    """What every module needs to admit the account's callers: whether it is active, its
    role, and since when its access tokens count (those issued before are refused: a
    password changed). The whole state, so the newest `changed_at` wins wherever it lands."""

    type: ClassVar[str] = "auth.access_changed.v1"

    active: bool
    role: Literal["admin", "user"]
    tokens_after: datetime
    changed_at: datetime


class ApiKeyIssued(_AccountEvent):
    """A new API key: its SHA-256 (hex) only, never the key."""

    type: ClassVar[str] = "auth.api_key_issued.v1"

    key_id: UUID
    key_hash: str
    role: Literal["admin", "user"]
    scopes: tuple[str, ...]
    expires_at: datetime | None


class ApiKeyRevoked(_AccountEvent):
    type: ClassVar[str] = "auth.api_key_revoked.v1"

    key_id: UUID
    key_hash: str
