"""One account per email whatever its Unicode form: NFKC, then case folding, at
registration, login and deletion alike."""

from __future__ import annotations

import unicodedata

import asyncpg
import httpx
import pytest

from app.modules.auth.emails import email_key, fold
from tests.conftest import asyncpg_dsn
from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem

UPPER = "ÄNNE@example.com"
LOWER = "änne@example.com"
DECOMPOSED = unicodedata.normalize("NFD", LOWER)  # a + combining diaeresis


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (UPPER, LOWER),
        (LOWER, UPPER),
        (LOWER, DECOMPOSED),
        (DECOMPOSED, "ÄnNe@EXAMPLE.com"),
        ("ﬁnn@example.com", "FINN@example.com"),  # a ligature, NFKC
        ("strasse@example.com", "STRAẞE@example.com"),  # ß folds to ss
        ("ana@bücher.de", "ana@xn--bcher-kva.de"),  # one domain, two spellings
    ],
)
async def test_two_forms_of_one_email_are_one_account(
    client: httpx.AsyncClient, first: str, second: str
) -> None:
    await register(client, first)

    response = await client.post("/api/auth/register", json={"email": second, "password": PASSWORD})

    assert_problem(response, 409)


@pytest.mark.parametrize("registered", [UPPER, LOWER, DECOMPOSED])
@pytest.mark.parametrize("typed", [UPPER, LOWER, DECOMPOSED, " ÄNNE@EXAMPLE.COM "])
async def test_every_form_logs_in(client: httpx.AsyncClient, registered: str, typed: str) -> None:
    await register(client, registered)

    tokens = await login(client, typed)

    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200


async def test_the_address_is_shown_as_given_and_keyed_folded(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    user = await register(client, UPPER)

    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        row = await conn.fetchrow("SELECT email, email_key FROM users")
    finally:
        await conn.close()
    assert user["email"] == UPPER
    assert "email_key" not in user
    assert (row["email"], row["email_key"]) == (UPPER, LOWER)


async def test_failures_of_every_form_count_against_one_email(
    client: httpx.AsyncClient,
) -> None:
    """Otherwise each spelling would be a fresh budget of guesses."""
    await register(client, LOWER)
    forms = [UPPER, LOWER, DECOMPOSED, "ÄnNe@example.com", "änne@EXAMPLE.COM"]
    answers = []
    for form in [*forms, LOWER]:
        response = await client.post(
            "/api/auth/login", json={"email": form, "password": "wrong guess"}
        )
        answers.append(response.status_code)

    assert answers == [401] * 5 + [429]


def test_the_key_is_stable_and_idempotent() -> None:
    samples = [UPPER, DECOMPOSED, "ﬁnn@example.com", "STRAẞE@Example.com", "Ǆ@x.org", "ﬀ@x"]
    for address in samples:
        key = email_key(address)
        assert email_key(key) == key
        assert fold(key) == key
        assert unicodedata.is_normalized("NFKC", key)
    assert email_key("not an email at all") == "not an email at all"
