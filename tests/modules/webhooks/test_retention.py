"""Delivery rows are the webhooks' queue and history: delivered and parked ones go once
older than their days; pending and failed ones (still retried) never go here."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.conftest import asyncpg_dsn, runtime_of
from tests.modules.webhooks.conftest import add_webhook
from tests.support.accounts import Account

pytestmark = pytest.mark.integration

ROWS = [
    ("delivered", 31),
    ("parked", 31),
    ("failed", 31),
    ("pending", 31),
    ("delivered", 29),
    ("parked", 29),
]


async def test_finished_deliveries_past_their_days_go_and_the_others_stay(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    webhook = await add_webhook(client, owner, "http://127.0.0.1:9/hook")
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["webhooks"]))
    try:
        for status, age in ROWS:
            await conn.execute(
                "INSERT INTO deliveries (id, webhook_id, event_type, payload, status, "
                "next_attempt_at, created_at) VALUES ($1, $2, 'link.created', '{}', $3, "
                "now() + interval '1 day', now() - make_interval(days => $4))",
                uuid.uuid4(),
                uuid.UUID(str(webhook["id"])),
                status,
                age,
            )
        job = next(j for j in runtime_of(client).retention if j.name == "webhooks")
        await job.run_once()
        left = await conn.fetch(
            "SELECT status, extract(day FROM now() - created_at)::int AS days FROM deliveries "
            "ORDER BY status, days"
        )
    finally:
        await conn.close()
    assert [(row["status"], row["days"]) for row in left] == [
        ("delivered", 29),
        ("failed", 31),
        ("parked", 29),
        ("pending", 31),
    ]
