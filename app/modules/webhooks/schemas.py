"""The webhooks API's bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

EventName = Literal["link.created", "link.updated", "link.deleted", "link.clicked"]
EVENT_NAMES: tuple[EventName, ...] = (
    "link.created",
    "link.updated",
    "link.deleted",
    "link.clicked",
)
Status = Literal["pending", "delivered", "failed", "parked"]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http(s), public host only.")
    events: list[EventName] = Field(min_length=1, max_length=len(EVENT_NAMES))


class Webhook(BaseModel):
    id: UUID
    url: str
    events: list[EventName]
    created_at: datetime


class CreatedWebhook(Webhook):
    secret: str = Field(
        description="`whsec_...`: verifies the signatures. Shown in this answer only."
    )


class WebhookList(BaseModel):
    items: list[Webhook]


class Delivery(BaseModel):
    id: UUID = Field(description="The `webhook-id` header: the same on every attempt.")
    event_type: EventName
    status: Status
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="None once delivered or parked.")
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: UUID | None = Field(description="Pass as `cursor` for the next, older page.")


class DeliveryQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    status: Status | None = None
    cursor: UUID | None = Field(default=None, description="`next_cursor` of the page before.")
