"""Events the shortener publishes. The partition key is the short code: one link's
events stay in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import Field

from app.contracts.base import IntegrationEvent


class _LinkEvent(IntegrationEvent):
    code: str

    @property
    def partition_key(self) -> str:
        return self.code


class LinkCreated(_LinkEvent):
    type: ClassVar[str] = "shortener.link_created.v1"

    link_id: UUID
    target_url: str
    owner_id: UUID | None
    created_at: datetime
    expires_at: datetime | None
    # Added to v1 with defaults (an additive change): events written before read as no
    # title and no tags, and consumers that know nothing of them ignore them.
    title: str | None = None
    tags: tuple[str, ...] = ()
    valid_from: datetime | None = None
    forward_query: bool = False
    max_visits: int | None = None
    # Whether a password guards the link (its hash never leaves the shortener), and its
    # redirect rules as the API shows them: `{"when": {...}, "url": ...}`, first match wins.
    has_password: bool = False
    redirect_rules: tuple[dict[str, Any], ...] = ()


class LinkUpdated(_LinkEvent):
    """A link changed: its state after the change, whole. `version` rises with each
    change (a creation is version 1), so a consumer keeps the newest it heard of, whatever
    the order the events arrive in."""

    type: ClassVar[str] = "shortener.link_updated.v1"

    link_id: UUID
    owner_id: UUID | None
    version: int
    target_url: str
    title: str | None
    tags: tuple[str, ...]
    expires_at: datetime | None
    valid_from: datetime | None = None
    forward_query: bool = False
    max_visits: int | None = None
    # Whether a password guards the link (its hash never leaves the shortener), and its
    # redirect rules as the API shows them: `{"when": {...}, "url": ...}`, first match wins.
    has_password: bool = False
    redirect_rules: tuple[dict[str, Any], ...] = ()
    # Disabled by an admin: the link answers 410 with the reason (additive: older events
    # read as enabled).
    disabled: bool = False
    disabled_reason: str | None = None


class LinkDeleted(_LinkEvent):
    type: ClassVar[str] = "shortener.link_deleted.v1"

    link_id: UUID
    owner_id: UUID | None


class LinkClicked(_LinkEvent):
    """One redirect served. The raw IP never leaves the shortener: only its /24 (IPv4) or
    /48 (IPv6) network, the place looked up from it, and a daily-salted visitor hash."""

    type: ClassVar[str] = "shortener.link_clicked.v1"

    click_id: UUID
    ip_anonymized: str | None
    country: str | None
    city: str | None
    user_agent: str | None
    referer: str | None
    visitor_hash: str
    is_bot: bool
    bot_reason: str | None
    metadata: dict[str, str] = Field(default_factory=dict)


class _DomainEvent(IntegrationEvent):
    domain: str  # lowercase ASCII (IDNA), no trailing dot; an IP literal as it is written

    @property
    def partition_key(self) -> str:
        return self.domain


class DomainBlocked(_DomainEvent):
    """An admin blocked a domain and its subdomains: links to them answer 410, and new
    ones are refused."""

    type: ClassVar[str] = "shortener.domain_blocked.v1"


class DomainUnblocked(_DomainEvent):
    type: ClassVar[str] = "shortener.domain_unblocked.v1"
