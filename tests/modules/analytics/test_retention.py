"""What analytics forgets: raw clicks (only when asked: kept by default) and visitors past
their days; the statistics people see stay exactly as they were. A retention shorter than
the replay horizon is refused at start, naming the setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.kernel.retention import RetentionJob
from app.main import ConfigurationError, create_app
from app.modules.analytics.settings import AnalyticsSettings
from tests.conftest import AppFactory, asyncpg_dsn, runtime_of
from tests.modules.analytics.helpers import click, created, feed, stats
from tests.support.accounts import Account, new_account

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
OLD = TODAY - timedelta(days=100)
RECENT = TODAY - timedelta(days=2)
RANGE = {"from_": OLD - timedelta(days=1), "to": TODAY + timedelta(days=1)}


def job(client: httpx.AsyncClient) -> RetentionJob:
    return next(j for j in runtime_of(client).retention if j.name == "analytics")


async def rows(database_urls: dict[str, str], statement: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
    try:
        return sorted(str(value) for (value,) in await conn.fetch(statement))
    finally:
        await conn.close()


async def clicks_old_and_recent(client: httpx.AsyncClient, owner: Account) -> None:
    await feed(
        client,
        created("abc", owner, created_at=OLD),
        click("abc", OLD + timedelta(hours=9), "ana"),
        click("abc", OLD + timedelta(hours=10), "bo"),
        click("abc", OLD + timedelta(hours=11), "ana"),
        click("abc", RECENT + timedelta(hours=9), "ana"),
    )


async def test_raw_clicks_and_visitors_past_their_days_go_and_the_statistics_stay(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    retention = AnalyticsSettings(click_retention_days=90, visitor_retention_days=30)
    async with app_client(analytics=retention) as client:
        owner = await new_account(client, "owner@example.com")
        await clicks_old_and_recent(client, owner)
        before = await stats(client, owner, "abc", **RANGE)
        assert before["totals"]["all"] == 4 and before["unique_clicks"] == 3

        await job(client).run_once()

        after = await stats(client, owner, "abc", **RANGE)
        assert after == before
        assert await rows(database_urls, "SELECT occurred_at::date FROM clicks") == [
            str(RECENT.date())
        ]
        assert await rows(database_urls, "SELECT day FROM visitors") == [str(RECENT.date())]


async def test_raw_clicks_are_kept_by_default(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        owner = await new_account(client, "owner@example.com")
        await clicks_old_and_recent(client, owner)
        await job(client).run_once()
        assert len(await rows(database_urls, "SELECT click_id FROM clicks")) == 4
        # Visitors go after 30 days by default: the 100-day-old day's are gone.
        assert await rows(database_urls, "SELECT day FROM visitors") == [str(RECENT.date())]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"visitor_retention_days": 8}, "ENCURTA_ANALYTICS__VISITOR_RETENTION_DAYS (8 days)"),
        ({"click_retention_days": 3}, "ENCURTA_ANALYTICS__CLICK_RETENTION_DAYS (3 days)"),
    ],
)
def test_a_retention_within_the_replay_horizon_is_refused_naming_the_setting(
    settings: Settings, database_urls: dict[str, str], changes: dict[str, int], setting: str
) -> None:
    chosen = settings.model_copy(update={"analytics": AnalyticsSettings(**changes)})
    with pytest.raises(ConfigurationError) as refused:
        create_app(chosen, database_urls)
    assert setting in str(refused.value)
    assert "ENCURTA_BUS__INBOX_TTL_SECONDS (8 days)" in str(refused.value)
