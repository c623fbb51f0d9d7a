from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import asyncpg_dsn
from tests.support.accounts import PASSWORD, register
from tests.support.problems import assert_problem


async def test_register_answers_the_user_without_any_hash(client: httpx.AsyncClient) -> None:
    user = await register(client, "Ana@Example.COM", first_name="Ana", last_name="Lima")

    assert user["email"] == "Ana@example.com"  # the domain is normalised, the local part kept
    assert user["first_name"] == "Ana" and user["last_name"] == "Lima"
    assert user["is_active"] is True
    assert not any("hash" in key or "password" in key for key in user)


async def test_the_password_is_stored_only_as_an_argon2id_hash(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await register(client)

    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("second", ["ana@example.com", "ANA@EXAMPLE.COM", "Ana@Example.Com"])
async def test_emails_are_unique_whatever_their_case(
    client: httpx.AsyncClient, second: str
) -> None:
    await register(client, "ana@example.com")

    response = await client.post("/api/auth/register", json={"email": second, "password": PASSWORD})

    body = assert_problem(response, 409)
    assert "already exists" in body["detail"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8"),
        ("x" * 257, "at most 256"),
        ("password123", "most common"),
        ("PASSWORD123", "most common"),
        ("iloveyou", "most common"),
    ],
)
async def test_weak_passwords_are_refused_naming_the_field(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "ana@example.com", "password": password}
    )

    [error] = assert_problem(response, 422, fields=["password"])["errors"]
    assert reason in error["message"]


@pytest.mark.parametrize(
    "password", ["12345678 but longer", "x" * 256, "correct horse battery staple", "ñandú-ñandú"]
)
async def test_long_or_unusual_passwords_are_accepted_without_composition_rules(
    client: httpx.AsyncClient, password: str
) -> None:
    await register(client, password=password)


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
async def test_invalid_emails_are_refused(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})

    assert_problem(response, 422, fields=["email"])
