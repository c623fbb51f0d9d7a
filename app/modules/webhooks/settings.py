"""The webhooks module's section of the settings (`ENCURTA_WEBHOOKS__...`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

from app.kernel.settings import DatabaseSettings


def _seconds_list(value: Any) -> Any:
    if isinstance(value, str):
        return [float(part) for part in value.split(",") if part.strip()]
    return value


# Comma-separated in the environment: `5,30,120`.
Schedule = Annotated[
    list[Annotated[float, Field(gt=0, le=7 * 86400)]], NoDecode, BeforeValidator(_seconds_list)
]


class WebhooksSettings(DatabaseSettings):
    retry_schedule_seconds: Schedule = Field(
        default=[5, 30, 120, 600, 3600, 10800, 21600],
        min_length=1,
        max_length=20,
        description="Waits before each retry of a failed delivery (comma-separated "
        "seconds, each with full jitter); after the last the delivery is parked.",
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Connect and read timeout of one delivery."
    )
    allow_private_targets: bool = Field(
        default=False,
        description="Deliver to loopback and private addresses (tests, a LAN receiver); "
        "otherwise refused at creation and at each delivery.",
    )
    click_batch_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How often clicks are sent, batched."
    )
    click_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Most clicks one link.clicked delivery carries."
    )
    max_webhooks: int = Field(default=20, ge=1, le=1000, description="Webhooks per account.")
    concurrency: int = Field(
        default=8, ge=1, le=100, description="Deliveries one process sends at once."
    )
    delivery_retention_days: int = Field(
        default=30,
        ge=1,
        description="Delivered and parked deliveries older than this are deleted (a parked "
        "one can be replayed until then).",
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the worker looks for due deliveries."
    )
