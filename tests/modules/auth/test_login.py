from __future__ import annotations

import asyncpg
import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from app.modules.auth.settings import Argon2Settings, AuthSettings, ThrottleSettings
from tests.conftest import FAST_ARGON2, AppFactory, asyncpg_dsn
from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem


async def test_login_returns_a_bearer_pair_that_opens_me(client: httpx.AsyncClient) -> None:
    user = await register(client)

    tokens = await login(client, "ANA@example.com")

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert len(tokens["refresh_token"]) >= 43  # 256 bits, base64url
    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json() == user


async def test_token_answers_are_not_cached(client: httpx.AsyncClient) -> None:
    await register(client)

    response = await client.post(
        "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
    )

    assert response.headers["cache-control"] == "no-store"


async def test_unknown_email_and_wrong_password_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    await register(client)

    wrong_password = await client.post(
        "/api/auth/login", json={"email": "ana@example.com", "password": "not the password"}
    )
    unknown_email = await client.post(
        "/api/auth/login", json={"email": "bob@example.com", "password": "not the password"}
    )

    first, second = assert_problem(wrong_password, 401), assert_problem(unknown_email, 401)
    assert first == second
    assert wrong_password.headers["www-authenticate"] == unknown_email.headers["www-authenticate"]


async def test_unknown_email_costs_a_hash_verification_too(
    app_client: AppFactory, database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the dummy hash an unknown email would answer ~100x faster, telling which
    emails have an account. Both cases must run one real argon2 verification with the same
    parameters: counted as they run, not timed (timings on a busy machine prove nothing)."""
    verified: list[str] = []
    real_verify = Argon2Hasher.verify

    def counted_verify(self: Argon2Hasher, password: str | bytes, hash: str | bytes) -> bool:
        verified.append(hash.decode() if isinstance(hash, bytes) else hash)
        return real_verify(self, password, hash)

    monkeypatch.setattr(Argon2Hasher, "verify", counted_verify)
    real_cost = AuthSettings(argon2=Argon2Settings(time_cost=2, memory_cost_kib=16384))
    async with app_client(auth=real_cost) as client:
        await register(client)
        parameters = (await stored_hash(database_urls)).split("$")[1:4]
        for email in ("ana@example.com", "nobody@example.com"):
            verified.clear()
            response = await client.post(
                "/api/auth/login", json={"email": email, "password": "not the password"}
            )
            assert response.status_code == 401
            assert [h.split("$")[1:4] for h in verified] == [parameters], (email, verified)


async def test_an_inactive_user_cannot_log_in(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await register(client)
    await set_active(database_urls, False)

    response = await client.post(
        "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
    )

    assert_problem(response, 403)


async def test_login_rehashes_when_the_argon2_parameters_changed(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client() as client:
        await register(client)
    before = await stored_hash(database_urls)

    stronger = AuthSettings(argon2=FAST_ARGON2.model_copy(update={"time_cost": 2}))
    async with app_client(auth=stronger) as client:
        await login(client)
        after = await stored_hash(database_urls)
        await login(client)  # the new hash verifies

    assert "t=1" in before and "t=2" in after


async def test_repeated_failures_for_one_email_are_throttled_with_retry_after(
    app_client: AppFactory,
) -> None:
    throttled = AuthSettings(
        argon2=FAST_ARGON2,
        throttle=ThrottleSettings(max_failures_per_email=3, max_failures_per_ip=100),
    )
    async with app_client(auth=throttled) as client:
        await register(client)
        for _ in range(3):
            response = await client.post(
                "/api/auth/login", json={"email": "ana@example.com", "password": "wrong guess"}
            )
            assert_problem(response, 401)

        blocked = await client.post(
            "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
        )

        assert_problem(blocked, 429)
        assert 1 <= int(blocked.headers["retry-after"]) <= 900
        # Another account from the same address is not affected.
        await register(client, "bob@example.com")
        await login(client, "bob@example.com")


async def test_repeated_failures_from_one_ip_are_throttled_across_emails(
    app_client: AppFactory,
) -> None:
    throttled = AuthSettings(
        argon2=FAST_ARGON2,
        throttle=ThrottleSettings(max_failures_per_email=100, max_failures_per_ip=4),
    )
    async with app_client(auth=throttled, client_ip="198.51.100.9") as client:
        for n in range(4):
            response = await client.post(
                "/api/auth/login", json={"email": f"guess{n}@example.com", "password": "x"}
            )
            assert_problem(response, 401)

        blocked = await client.post(
            "/api/auth/login", json={"email": "guess9@example.com", "password": "x"}
        )

    assert_problem(blocked, 429)


async def set_active(database_urls: dict[str, str], active: bool) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        await conn.execute("UPDATE users SET is_active = $1", active)
    finally:
        await conn.close()


async def stored_hash(database_urls: dict[str, str]) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        value: str = await conn.fetchval("SELECT password_hash FROM users")
        return value
    finally:
        await conn.close()


async def test_behind_a_trusted_proxy_the_ip_limit_counts_the_forwarded_client(
    app_client: AppFactory,
) -> None:
    behind_proxy = AuthSettings(
        argon2=FAST_ARGON2,
        throttle=ThrottleSettings(max_failures_per_email=100, max_failures_per_ip=2),
        trusted_proxies=["203.0.113.7/32"],  # the test client's own address: the proxy
    )
    async with app_client(auth=behind_proxy) as client:

        async def fail(forwarded_for: str) -> int:
            response = await client.post(
                "/api/auth/login",
                json={"email": "someone@example.com", "password": "wrong"},
                headers={"X-Forwarded-For": forwarded_for},
            )
            return response.status_code

        assert [await fail("198.51.100.1") for _ in range(2)] == [401, 401]
        assert await fail("198.51.100.1") == 429  # that client is throttled...
        assert await fail("198.51.100.2") == 401  # ...another behind the same proxy is not
        # A client cannot dodge its limit by prepending a forged address.
        assert await fail("10.9.9.9, 198.51.100.1") == 429
