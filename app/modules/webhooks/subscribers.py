"""The shortener's events, turned into deliveries in the inbox's transaction.

Each handler runs in the transaction that records the events' ids in the inbox, so a
redelivered event adds nothing, and a crash either keeps the event and its deliveries or
neither. A delivery's id is derived from the event's id and the webhook's, so even an event
redelivered after the inbox forgot it (its TTL) maps onto the same row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted, LinkUpdated
from app.modules.webhooks.tables import deliveries, link_owners, pending_clicks, webhooks

_DELIVERY_NAMESPACE = uuid.UUID("6f1c2a43-9a7e-4d2b-8d59-7c1b5e0f3a10")


def delivery_id(event_id: UUID, webhook_id: UUID) -> UUID:
    return uuid.uuid5(_DELIVERY_NAMESPACE, f"{event_id}/{webhook_id}")


def payload(event_type: str, at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a delivery, as Standard Webhooks suggests: type, timestamp, data."""
    return {"type": event_type, "timestamp": at.isoformat(), "data": dict(data)}


async def subscribed(conn: AsyncConnection, owner_id: UUID, event_type: str) -> list[UUID]:
    rows = await conn.execute(
        select(webhooks.c.id).where(
            webhooks.c.owner_id == owner_id, webhooks.c.events.any_() == event_type
        )
    )
    return list(rows.scalars())


async def queue(
    conn: AsyncConnection,
    owner_id: UUID | None,
    event_type: str,
    event_id: UUID,
    body: dict[str, Any],
) -> None:
    """A delivery for each of the owner's webhooks that wants `event_type`."""
    if owner_id is None:
        return
    rows = [
        {
            "id": delivery_id(event_id, webhook_id),
            "webhook_id": webhook_id,
            "event_type": event_type,
            "payload": body,
        }
        for webhook_id in await subscribed(conn, owner_id, event_type)
    ]
    if rows:
        await conn.execute(insert(deliveries).values(rows).on_conflict_do_nothing())


async def _remember_owner(conn: AsyncConnection, code: str, owner_id: UUID | None) -> None:
    if owner_id is None:
        return
    statement = insert(link_owners).values(code=code, owner_id=owner_id)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["code"], set_={"owner_id": owner_id})
    )


async def on_link_created(conn: AsyncConnection, events: Sequence[LinkCreated]) -> None:
    for e in events:
        await _remember_owner(conn, e.code, e.owner_id)
        data = {
            "code": e.code,
            "link_id": str(e.link_id),
            "url": e.target_url,  # named as in the links API
            "title": e.title,
            "tags": list(e.tags),
            "created_at": e.created_at.isoformat(),
            "expires_at": e.expires_at.isoformat() if e.expires_at else None,
        }
        await queue(
            conn,
            e.owner_id,
            "link.created",
            e.event_id,
            payload("link.created", e.occurred_at, data),
        )


async def on_link_updated(conn: AsyncConnection, events: Sequence[LinkUpdated]) -> None:
    for e in events:
        await _remember_owner(conn, e.code, e.owner_id)
        data = {
            "code": e.code,
            "link_id": str(e.link_id),
            "version": e.version,
            "url": e.target_url,  # named as in the links API
            "title": e.title,
            "tags": list(e.tags),
            "expires_at": e.expires_at.isoformat() if e.expires_at else None,
            "disabled": e.disabled,
        }
        await queue(
            conn,
            e.owner_id,
            "link.updated",
            e.event_id,
            payload("link.updated", e.occurred_at, data),
        )


async def on_link_deleted(conn: AsyncConnection, events: Sequence[LinkDeleted]) -> None:
    for e in events:
        # The owner is kept: clicks served just before the deletion may still arrive.
        await _remember_owner(conn, e.code, e.owner_id)
        data = {"code": e.code, "link_id": str(e.link_id)}
        await queue(
            conn,
            e.owner_id,
            "link.deleted",
            e.event_id,
            payload("link.deleted", e.occurred_at, data),
        )


async def on_link_clicked(conn: AsyncConnection, events: Sequence[LinkClicked]) -> None:
    """Clicks wait to leave in batches (app.modules.webhooks.worker). A click of a link
    whose owner wants no clicks is dropped here; one of a link not heard of yet waits."""
    codes = {e.code for e in events}
    found = await conn.execute(
        select(link_owners.c.code, link_owners.c.owner_id).where(link_owners.c.code.in_(codes))
    )
    owners = {row.code: row.owner_id for row in found}
    wanted: dict[UUID, bool] = {}
    rows = []
    for e in events:
        owner = owners.get(e.code)
        if owner is not None:
            if owner not in wanted:
                wanted[owner] = bool(await subscribed(conn, owner, "link.clicked"))
            if not wanted[owner]:
                continue
        # Never the address, not even its network: a receiver gets what a person sees.
        click = {
            "click_id": str(e.click_id),
            "code": e.code,
            "occurred_at": e.occurred_at.isoformat(),
            "country": e.country,
            "city": e.city,
            "user_agent": e.user_agent,
            "referer": e.referer,
            "is_bot": e.is_bot,
        }
        rows.append({"click_id": e.click_id, "code": e.code, "click": click})
    if rows:
        await conn.execute(insert(pending_clicks).values(rows).on_conflict_do_nothing())


async def on_user_deleted(conn: AsyncConnection, events: Sequence[UserDeleted]) -> None:
    """The account is gone: its webhooks (and with them their deliveries) and its links."""
    owners = [e.user_id for e in events]
    await conn.execute(delete(webhooks).where(webhooks.c.owner_id.in_(owners)))
    await conn.execute(delete(link_owners).where(link_owners.c.owner_id.in_(owners)))
