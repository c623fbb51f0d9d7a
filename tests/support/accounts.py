"""Accounts made through auth's own API, as a client makes them, and the links they own.

Each step asserts its success status, so a test that only needs an account fails where the
account could not be made, not later with a puzzling 401.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

PASSWORD = "a long and unusual passphrase"
EMAIL = "ana@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """The 201 body: the new user."""
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> dict[str, Any]:
    """The 200 body: the access and refresh tokens."""
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """The raw answer: refresh tests check refusals as often as successes."""
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


@dataclass(frozen=True)
class Account:
    id: UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def new_account(client: httpx.AsyncClient, email: str = EMAIL) -> Account:
    """Registered and logged in: a caller with a token."""
    user = await register(client, email=email)
    tokens = await login(client, email=email)
    return Account(id=uuid.UUID(user["id"]), email=email, token=tokens["access_token"])


async def shorten(
    client: httpx.AsyncClient,
    account: Account | None,
    url: str = "https://example.com/",
    **extra: Any,
) -> dict[str, Any]:
    """Create a link (anonymously with no account); the 201 body."""
    headers = account.headers if account else {}
    response = await client.post("/api/links", json={"url": url, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
