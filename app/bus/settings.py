"""Delivery settings shared by every transport (`ENCURTA_BUS__...`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeliverySettings(BaseModel):
    relay_batch_size: int = Field(default=1000, ge=1, le=10_000)
    relay_poll_seconds: float = Field(
        default=1.0, gt=0, description="Fallback poll; NOTIFY wakes the relay sooner."
    )
    relay_coalesce_seconds: float = Field(
        default=0.05,
        ge=0,
        description="After a wake-up, wait this long so one batch carries many commits' "
        "events: fewer, larger transactions downstream, for a little more lag.",
    )
    outbox_retention_seconds: int = Field(
        default=3600, ge=0, description="How long sent outbox rows are kept (replay horizon)."
    )
    inbox_ttl_seconds: int = Field(
        default=8 * 24 * 3600,
        ge=60,
        description="How long processed event ids are remembered; longer than any replay.",
    )
    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_base_seconds: float = Field(default=0.2, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
