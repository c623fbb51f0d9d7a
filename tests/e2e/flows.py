"""Reading the numbers over HTTP, shared by the end-to-end tests (accounts and links come
from tests/support)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.accounts import Account


async def stats(
    client: httpx.AsyncClient, account: Account, code: str, **params: str
) -> dict[str, Any]:
    response = await client.get(f"/api/stats/{code}", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_total(
    client: httpx.AsyncClient, account: Account, code: str, expected: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the stats until analytics has counted `expected` clicks: events are async, and
    analytics knows the link only once its `link_created` arrived (404 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/stats/{code}", headers=account.headers)
        if response.status_code != 404 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["totals"]["all"] >= expected or time.monotonic() > deadline:
                return body
        await asyncio.sleep(0.1)
