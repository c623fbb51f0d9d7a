"""Webhooks of an account: made, listed, deleted; their deliveries listed and replayed.

Every read and write is scoped by the owner: another account's webhook is answered as if
it did not exist.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from uuid import UUID

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.kernel.targets import UnsafeTarget, check_target
from app.modules.webhooks.schemas import (
    CreatedWebhook,
    Delivery,
    DeliveryPage,
    DeliveryQuery,
    NewWebhook,
    Webhook,
)
from app.modules.webhooks.settings import WebhooksSettings
from app.modules.webhooks.tables import deliveries, webhooks

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
_SECRET_BYTES = 32


class WebhookNotFound(LookupError):
    pass


class DeliveryNotFound(LookupError):
    pass


class TooManyWebhooks(Exception):
    pass


class Refused(ValueError):
    """A 4xx naming `field`, with `message` for its owner to read."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _about_the_url(message: str) -> str:
    """The kernel's rules speak of links to shorten; here the URL is a receiver's."""
    message = message.replace("links can be shortened", "URLs are accepted")
    return message.replace("The link", "The URL").replace("Links", "URLs")


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


class WebhookService:
    def __init__(self, engine: AsyncEngine, settings: WebhooksSettings) -> None:
        self._engine = engine
        self._settings = settings

    async def create(self, owner_id: UUID, body: NewWebhook) -> CreatedWebhook:
        try:
            url = check_target(body.url, allow_private=self._settings.allow_private_targets)
        except UnsafeTarget as exc:
            raise Refused("url", _about_the_url(str(exc))) from None
        events = sorted(set(body.events), key=body.events.index)
        secret = new_secret()
        async with self._engine.begin() as conn:
            # Serialises one owner's creations, so the limit cannot be raced past.
            await conn.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(str(owner_id), 0)))
            )
            count = await conn.scalar(
                select(func.count()).select_from(webhooks).where(webhooks.c.owner_id == owner_id)
            )
            if (count or 0) >= self._settings.max_webhooks:
                raise TooManyWebhooks(self._settings.max_webhooks)
            row = (
                await conn.execute(
                    webhooks.insert()
                    .values(
                        id=uuid.uuid4(), owner_id=owner_id, url=url, events=events, secret=secret
                    )
                    .returning(webhooks.c.id, webhooks.c.created_at)
                )
            ).one()
        return CreatedWebhook(
            id=row.id, url=url, events=events, created_at=row.created_at, secret=secret
        )

    async def list(self, owner_id: UUID) -> list[Webhook]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(webhooks.c.id, webhooks.c.url, webhooks.c.events, webhooks.c.created_at)
                    .where(webhooks.c.owner_id == owner_id)
                    .order_by(webhooks.c.created_at, webhooks.c.id)
                )
            ).all()
        return [Webhook(**row._asdict()) for row in rows]

    async def delete(self, owner_id: UUID, webhook_id: UUID) -> None:
        """Its deliveries go with it (the foreign key cascades): nothing more is sent."""
        async with self._engine.begin() as conn:
            gone = await conn.execute(
                delete(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.owner_id == owner_id)
            )
        if gone.rowcount == 0:
            raise WebhookNotFound(str(webhook_id))

    async def deliveries(
        self, owner_id: UUID, webhook_id: UUID, query: DeliveryQuery
    ) -> DeliveryPage:
        async with self._engine.connect() as conn:
            await self._owned(conn, owner_id, webhook_id)
            statement = (
                select(*_DELIVERY_COLUMNS)
                .where(deliveries.c.webhook_id == webhook_id)
                .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
                .limit(query.limit + 1)
            )
            if query.status is not None:
                statement = statement.where(deliveries.c.status == query.status)
            if query.cursor is not None:
                mark = (
                    await conn.execute(
                        select(deliveries.c.created_at, deliveries.c.id).where(
                            deliveries.c.id == query.cursor,
                            deliveries.c.webhook_id == webhook_id,
                        )
                    )
                ).one_or_none()
                if mark is None:
                    raise Refused("cursor", "This cursor is no delivery of this webhook.")
                statement = statement.where(
                    tuple_(deliveries.c.created_at, deliveries.c.id)
                    < tuple_(mark.created_at, mark.id)
                )
            rows = (await conn.execute(statement)).all()
        page = [_delivery(row._asdict()) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return DeliveryPage(items=page, next_cursor=page[-1].id if more else None)

    async def replay(self, owner_id: UUID, webhook_id: UUID, delivery_id: UUID) -> Delivery:
        """A parked or failed delivery is due again now, with a fresh schedule of retries;
        it keeps its id, so a receiver that did get it once can tell."""
        async with self._engine.begin() as conn:
            await self._owned(conn, owner_id, webhook_id)
            row = (
                await conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.webhook_id == webhook_id,
                        deliveries.c.status.in_(("parked", "failed")),
                    )
                    .values(status="pending", attempts=0, next_attempt_at=func.now())
                    .returning(*_DELIVERY_COLUMNS)
                )
            ).one_or_none()
            if row is None:
                exists = await conn.scalar(
                    select(deliveries.c.status).where(
                        deliveries.c.id == delivery_id, deliveries.c.webhook_id == webhook_id
                    )
                )
                if exists is None:
                    raise DeliveryNotFound(str(delivery_id))
                raise Refused("status", f"Only a parked or failed delivery is replayed ({exists}).")
        return _delivery(row._asdict())

    async def _owned(self, conn: AsyncConnection, owner_id: UUID, webhook_id: UUID) -> None:
        found = await conn.scalar(
            select(webhooks.c.id).where(
                webhooks.c.id == webhook_id, webhooks.c.owner_id == owner_id
            )
        )
        if found is None:
            raise WebhookNotFound(str(webhook_id))


_DELIVERY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.event_type,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.last_status_code,
    deliveries.c.last_error,
    deliveries.c.next_attempt_at,
    deliveries.c.created_at,
    deliveries.c.delivered_at,
)


def _delivery(row: dict[str, object]) -> Delivery:
    due = row["status"] in ("pending", "failed")
    return Delivery.model_validate(
        {**row, "next_attempt_at": row["next_attempt_at"] if due else None}
    )
