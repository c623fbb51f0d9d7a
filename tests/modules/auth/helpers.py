"""Small steps of the auth flow that many tests repeat."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "a long and unusual passphrase"


async def register(
    client: httpx.AsyncClient,
    email: str = "ana@example.com",
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str = "ana@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body
