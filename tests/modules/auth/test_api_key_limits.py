"""API keys created per user in a window (ENCURTA_AUTH__LIMITS__...): a 429 with its
headers over HTTP, in memory and shared by replicas through PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.config import Settings
from app.kernel import limits
from app.kernel.limits import LimitSettings
from app.modules.auth.settings import AuthLimits
from tests.conftest import AppFactory
from tests.support.accounts import new_account

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.at = 3600.0 * 300 + 600  # 10 minutes into an hour's window: 3000 s left

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits, "now", clock)
    return clock


def limited(settings: Settings, keys: int, store: str = "memory") -> dict[str, Any]:
    auth = settings.auth.model_copy(update={"limits": AuthLimits(api_keys_per_user=keys)})
    return {"auth": auth, "limits": LimitSettings(store=store)}  # type: ignore[arg-type]


async def create(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/keys", json={"name": "ci", "scopes": ["links:read"]}, headers=headers
    )


async def test_keys_per_user_429_with_headers_then_allowed_in_the_next_window(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    async with app_client(**limited(settings, 2)) as client:
        ana = await new_account(client)
        assert [(await create(client, ana.headers)).status_code for _ in range(2)] == [201, 201]
        refused = await create(client, ana.headers)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "api-keys-per-user" in refused.json()["detail"]
        assert refused.headers["Retry-After"] == "3000"
        assert refused.headers["RateLimit"] == "limit=2, remaining=0, reset=3000"
        assert refused.headers["RateLimit-Policy"] == "2;w=3600"
        # Another user is counted apart.
        bo = await new_account(client, "bo@example.com")
        assert (await create(client, bo.headers)).status_code == 201

        clock.at += 3000
        assert (await create(client, ana.headers)).status_code == 201


async def test_replicas_sharing_postgres_share_the_keys_limit(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = limited(settings, 2, "postgres")
    async with app_client(**changes) as first, app_client(**changes) as second:
        ana = await new_account(first)
        assert (await create(first, ana.headers)).status_code == 201
        assert (await create(second, ana.headers)).status_code == 201
        assert (await create(first, ana.headers)).status_code == 429
        assert (await create(second, ana.headers)).status_code == 429
