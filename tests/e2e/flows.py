"""Steps of the product's main flow, over HTTP, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

PASSWORD = "a long and unusual passphrase"


async def signed_in(client: httpx.AsyncClient, email: str = "ana@example.com") -> str:
    """Register and log in; returns the access token."""
    registered = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def shorten(client: httpx.AsyncClient, token: str, url: str, **extra: Any) -> str:
    response = await client.post(
        "/api/links", json={"url": url, **extra}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


async def stats(
    client: httpx.AsyncClient, token: str, code: str, **params: str
) -> dict[str, Any]:
    response = await client.get(f"/api/stats/{code}", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_total(
    client: httpx.AsyncClient, token: str, code: str, expected: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the stats until analytics has counted `expected` clicks: events are async, and
    analytics knows the link only once its `link_created` arrived (404 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/stats/{code}", headers=bearer(token))
        if response.status_code != 404 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["totals"]["all"] >= expected or time.monotonic() > deadline:
                return body
        await asyncio.sleep(0.1)
