"""Deleted links and deleted accounts leave nothing behind, not even through late clicks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.modules.analytics.subscribers import on_link_clicked, on_link_deleted
from tests.conftest import asyncpg_dsn
from tests.modules.analytics.helpers import (
    MONDAY,
    click,
    created,
    deleted,
    feed,
    get_stats,
    link_rows,
    stats,
    stored_rows,
    user_deleted,
)
from tests.support.accounts import Account, new_account
from tests.support.problems import assert_problem
from tests.support.waiting import eventually

NOTHING = {"clicks": 0, "visitors": 0, "url_stats": 0, "url_dimension_stats": 0}
WEEK = {"from_": MONDAY, "to": MONDAY + timedelta(days=7)}


async def test_a_deleted_link_loses_its_data_and_its_late_clicks_are_dropped(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    await feed(
        client,
        created("gone", owner),
        created("kept", owner),
        click("gone", MONDAY, "ana"),
        click("kept", MONDAY, "ana"),
    )
    assert (await stored_rows(database_urls["analytics"], "gone"))["clicks"] == 1

    await feed(client, deleted("gone", owner))
    await feed(client, click("gone", MONDAY + timedelta(hours=1), "bo"))  # in flight

    assert await stored_rows(database_urls["analytics"], "gone") == NOTHING
    assert_problem(await get_stats(client, owner, "gone", **WEEK), 404)
    assert (await stats(client, owner, "kept", **WEEK))["totals"]["all"] == 1


async def test_a_deletion_that_overtakes_the_creation_still_wins(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    await feed(client, click("gone", MONDAY, "ana"))
    await feed(client, deleted("gone", owner))
    await feed(client, created("gone", owner), click("gone", MONDAY, "bo"))

    assert await stored_rows(database_urls["analytics"], "gone") == NOTHING
    assert_problem(await get_stats(client, owner, "gone", **WEEK), 404)


async def test_a_deleted_account_loses_every_link_and_late_events_stay_dropped(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    other = await new_account(client, "other@example.com")
    await feed(
        client,
        created("mine-1", owner),
        created("mine-2", owner),
        created("theirs", other),
        click("mine-1", MONDAY, "ana"),
        click("mine-2", MONDAY, "ana"),
        click("theirs", MONDAY, "ana"),
        click("mine-3", MONDAY, "ana"),  # its link_created has not arrived yet
    )

    await feed(client, user_deleted(owner))
    await feed(client, click("mine-1", MONDAY, "bo"), click("mine-2", MONDAY, "bo"))
    await feed(client, created("mine-3", owner), click("mine-3", MONDAY, "bo"))

    for code in ("mine-1", "mine-2", "mine-3"):
        assert await stored_rows(database_urls["analytics"], code) == NOTHING, code
        assert_problem(await get_stats(client, owner, code, **WEEK), 404)
    assert (await stats(client, other, "theirs", **WEEK))["totals"]["all"] == 1


async def test_a_deleted_account_leaves_no_owner_or_target_behind(
    client: httpx.AsyncClient, owner: Account, database_urls: dict[str, str]
) -> None:
    await feed(client, created("mine", owner), user_deleted(owner), created("late", owner))

    rows = await link_rows(database_urls["analytics"])

    assert rows == {"mine": (None, None, True), "late": (None, None, True)}


@pytest.fixture
async def analytics_engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_urls["analytics"], poolclass=pool.NullPool)
    yield engine
    await engine.dispose()


async def waits_for_the_open_transaction(database_url: str, task: asyncio.Task[None]) -> bool:
    """True once `task`'s session waits for a lock (the open transaction's), however long a
    busy machine takes to get it there; False if the task ended without waiting."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))

    async def lock_waiters() -> int:
        waiting: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return waiting

    try:
        waiting = await eventually(
            lock_waiters, lambda n: n > 0 or task.done(), "the deletion waiting, or done"
        )
        return waiting > 0
    finally:
        await conn.close()


async def test_a_deletion_waits_for_a_click_batch_in_flight(
    client: httpx.AsyncClient,
    owner: Account,
    database_urls: dict[str, str],
    analytics_engine: AsyncEngine,
) -> None:
    """Two consumers (or a replay beside the live feed) may handle one link at once."""
    await feed(client, created("gone", owner))

    async def delete_link() -> None:
        async with analytics_engine.begin() as conn:
            await on_link_deleted(conn, [deleted("gone", owner)])

    async with analytics_engine.begin() as clicks_batch:
        await on_link_clicked(clicks_batch, [click("gone", MONDAY, "ana")])
        deletion = asyncio.create_task(delete_link())
        # It cannot delete clicks it does not see yet.
        waited = await waits_for_the_open_transaction(database_urls["analytics"], deletion)
        assert waited and not deletion.done()
    await deletion

    assert await stored_rows(database_urls["analytics"], "gone") == NOTHING


async def test_a_click_batch_waits_for_a_deletion_in_flight_and_then_drops_its_clicks(
    client: httpx.AsyncClient,
    owner: Account,
    database_urls: dict[str, str],
    analytics_engine: AsyncEngine,
) -> None:
    await feed(client, created("gone", owner))

    async def count_click() -> None:
        async with analytics_engine.begin() as conn:
            await on_link_clicked(conn, [click("gone", MONDAY, "ana")])

    async with analytics_engine.begin() as deletion:
        await on_link_deleted(deletion, [deleted("gone", owner)])
        clicks_batch = asyncio.create_task(count_click())
        waited = await waits_for_the_open_transaction(database_urls["analytics"], clicks_batch)
        assert waited and not clicks_batch.done()
    await clicks_batch

    assert await stored_rows(database_urls["analytics"], "gone") == NOTHING
