"""An account that owns the links of a test, made through auth's own API."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.modules.analytics.helpers import Account
from tests.support.accounts import login, register


async def new_account(client: httpx.AsyncClient, email: str) -> Account:
    user = await register(client, email=email)
    tokens = await login(client, email=email)
    return Account(id=uuid.UUID(user["id"]), token=tokens["access_token"])


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await new_account(client, "owner@example.com")
