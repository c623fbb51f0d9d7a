"""The kernel's batched purge, on a table of its own in a real database: rows past their
age go, newer ones stay, in batches of the rule's size; a dry run only counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.database import create_engine
from app.kernel.retention import (
    Retention,
    RetentionError,
    RetentionJob,
    check_horizon,
    describe,
    purge,
    purge_rule,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_urls: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with `probe(id, at, day, done)`, empty."""
    engine = create_engine(database_urls["analytics"])
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS probe"))
        await conn.execute(
            text("CREATE TABLE probe (id int PRIMARY KEY, at timestamptz, day date, done bool)")
        )
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE probe"))
    await engine.dispose()


async def insert(engine: AsyncEngine, ids: range, age_days: float, done: bool = True) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO probe SELECT i, now() - make_interval(secs => :age), "
                "(now() - make_interval(secs => :age))::date, :done "
                "FROM unnest(CAST(:ids AS int[])) AS i"
            ),
            {"ids": list(ids), "age": age_days * 86400, "done": done},
        )


async def ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT id FROM probe ORDER BY id"))).scalars())


def rule(**changes: Any) -> Retention:
    fields: dict[str, Any] = {
        "what": "probes",
        "table": "probe",
        "age_column": "at",
        "older_than": timedelta(days=10),
        "setting": "ENCURTA_PROBE_RETENTION_DAYS",
    }
    return Retention(**{**fields, **changes})


def deletes_counted(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("DELETE"):
            statements.append(statement)

    return statements


async def test_rows_past_their_age_go_in_batches_and_newer_ones_stay(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 6), age_days=11)  # 5 old
    await insert(engine, range(6, 9), age_days=9)  # 3 newer
    deletes = deletes_counted(engine)

    gone = await purge_rule(engine, rule(batch=2), pause_seconds=0)

    assert gone == 5
    assert await ids(engine) == [6, 7, 8]
    assert len(deletes) == 3  # 2 + 2 + 1: the short batch says there is no more


async def test_a_full_last_batch_costs_one_empty_batch_more(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 5), age_days=11)
    deletes = deletes_counted(engine)
    assert await purge_rule(engine, rule(batch=2), pause_seconds=0) == 4
    assert len(deletes) == 3
    assert await ids(engine) == []


async def test_a_dry_run_counts_and_deletes_nothing(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 4), age_days=30)
    await insert(engine, range(4, 6), age_days=1)
    deletes = deletes_counted(engine)

    assert await purge(engine, [rule(), rule(older_than=timedelta(days=0))], dry_run=True) == [
        3,
        5,
    ]
    assert deletes == []
    assert await ids(engine) == [1, 2, 3, 4, 5]


async def test_rows_the_condition_keeps_never_go_however_old(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 4), age_days=100, done=False)  # an unsent outbox row, say
    await insert(engine, range(4, 6), age_days=100, done=True)
    assert await purge_rule(engine, rule(where="done", batch=1), pause_seconds=0) == 2
    assert await ids(engine) == [1, 2, 3]


async def test_kept_forever_touches_nothing(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 3), age_days=10_000)
    deletes = deletes_counted(engine)
    assert await purge_rule(engine, rule(older_than=None)) == 0
    assert await purge_rule(engine, rule(older_than=None), dry_run=True) == 0
    assert deletes == []
    assert await ids(engine) == [1, 2]


async def test_a_date_column_is_aged_by_its_day(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 3), age_days=12)
    await insert(engine, range(3, 5), age_days=2)
    assert await purge_rule(engine, rule(age_column="day")) == 2
    assert await ids(engine) == [3, 4]


async def test_the_job_purges_at_start_and_stops(engine: AsyncEngine) -> None:
    await insert(engine, range(1, 4), age_days=11)
    await insert(engine, range(4, 5), age_days=1)
    job = RetentionJob("probe", engine, [rule(), rule(older_than=None)], interval_seconds=3600)
    assert job.rules == [rule()]  # the rules that keep everything are not run
    await job.run_once()
    assert await ids(engine) == [4]
    await job.start()
    await job.stop()


def test_a_rule_that_would_forget_within_the_replay_horizon_is_refused() -> None:
    horizon = timedelta(days=8)
    fine = rule(older_than=timedelta(days=9), outlives_replay=True)
    check_horizon([fine, rule(older_than=None, outlives_replay=True)], horizon, "ENCURTA_TTL")
    check_horizon([rule(older_than=timedelta(days=1))], horizon, "ENCURTA_TTL")  # no replay
    with pytest.raises(RetentionError) as refused:
        check_horizon([rule(older_than=timedelta(days=8), outlives_replay=True)], horizon, "X_TTL")
    assert "ENCURTA_PROBE_RETENTION_DAYS (8 days)" in str(refused.value)
    assert "X_TTL (8 days)" in str(refused.value)


def test_names_are_identifiers_and_ages_read_plainly() -> None:
    with pytest.raises(ValueError, match="identifier"):
        rule(table="probe; DROP TABLE users")
    assert [describe(d) for d in (None, timedelta(0), timedelta(days=30))] == [
        "kept",
        "expired",
        "30 days",
    ]
    assert describe(timedelta(hours=1)) == "1 hour"
    assert describe(timedelta(seconds=90)) == "90 seconds"
