"""The bus's retention rules on its own tables: sent outbox rows past their retention go,
an unsent row never does; expired inbox ids go; parked events go after their days."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.retention import bus_rules, replay_horizon
from app.bus.settings import DeliverySettings
from app.kernel.retention import purge

pytestmark = pytest.mark.integration

SETTINGS = DeliverySettings(outbox_retention_seconds=3600, parked_retention_days=30)
TABLES = {"outbox", "processed_events", "parked_events"}


async def outbox_row(
    engine: AsyncEngine, name: str, created_ago: str, sent_ago: str | None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox (event_id, type, key, payload, occurred_at, created_at, "
                "sent_at) VALUES (:id, 'test.v1', :key, '{}', now(), "
                "now() - CAST(CAST(:created AS text) AS interval), "
                "now() - CAST(CAST(:sent AS text) AS interval))"
            ),
            {"id": uuid.uuid4(), "key": name, "created": created_ago, "sent": sent_ago},
        )


async def names(engine: AsyncEngine, statement: str) -> list[str]:
    async with engine.connect() as conn:
        return sorted(str(name) for name in (await conn.execute(text(statement))).scalars())


async def test_sent_rows_go_after_their_retention_and_unsent_ones_never(
    engine: AsyncEngine,
) -> None:
    await outbox_row(engine, "sent-2h-ago", "3 hours", "2 hours")
    await outbox_row(engine, "sent-10min-ago", "3 hours", "10 minutes")
    await outbox_row(engine, "unsent-30-days", "30 days", None)
    await outbox_row(engine, "unsent-new", "1 second", None)
    rules = bus_rules(SETTINGS, {"outbox"})

    assert await purge(engine, rules, dry_run=True) == [1]
    assert await purge(engine, rules) == [1]
    assert await names(engine, "SELECT key FROM outbox") == [
        "sent-10min-ago",
        "unsent-30-days",
        "unsent-new",
    ]
    # Even a rule that keeps sent rows for no time at all leaves the unsent ones.
    at_once = bus_rules(DeliverySettings(outbox_retention_seconds=0), {"outbox"})
    assert await purge(engine, at_once) == [1]
    assert await names(engine, "SELECT key FROM outbox") == ["unsent-30-days", "unsent-new"]


async def test_expired_inbox_ids_and_old_parked_events_go(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO processed_events (event_id, type, ttl_expires_at) VALUES "
                "(:a, 'expired', now() - interval '1 minute'), "
                "(:b, 'remembered', now() + interval '1 minute')"
            ),
            {"a": uuid.uuid4(), "b": uuid.uuid4()},
        )
        await conn.execute(
            text(
                "INSERT INTO parked_events (id, type, envelope, error, attempts, "
                "first_failed_at) VALUES "
                "(:a, 'parked-31-days', '{}', 'boom', 5, now() - interval '31 days'), "
                "(:b, 'parked-29-days', '{}', 'boom', 5, now() - interval '29 days')"
            ),
            {"a": uuid.uuid4(), "b": uuid.uuid4()},
        )
    rules = bus_rules(SETTINGS, TABLES)
    assert [rule.table for rule in rules] == ["outbox", "processed_events", "parked_events"]

    assert await purge(engine, rules, dry_run=True) == [0, 1, 1]
    assert await purge(engine, rules) == [0, 1, 1]
    assert await names(engine, "SELECT type FROM processed_events") == ["remembered"]
    assert await names(engine, "SELECT type FROM parked_events") == ["parked-29-days"]


def test_only_the_tables_a_module_has_get_rules() -> None:
    assert [rule.table for rule in bus_rules(SETTINGS, {"parked_events", "users"})] == [
        "parked_events"
    ]
    assert replay_horizon(DeliverySettings()) == timedelta(days=8)
