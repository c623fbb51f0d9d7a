"""An account that owns the links of a test, made through auth's own API."""

from __future__ import annotations

import httpx
import pytest

from tests.support.accounts import Account, new_account


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await new_account(client, "owner@example.com")
