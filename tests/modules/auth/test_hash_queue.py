"""Waiting for a password hash is bounded: one hash queued or running per client at a
time (a second request of that client is answered 429 without hashing, and not counted
as a failure), and at most `max_queued` waiting in all (a newcomer beyond them is answered
503). So a fresh client waits for at most `max_queued` hashes, not for a flood.

The hashes are held in their thread by a probe and let go one by one, so the tests
look at what was hashed and in which order, never at the clock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash

from app.modules.auth.passwords import HashSlot, Passwords
from app.modules.auth.settings import AuthSettings, ThrottleSettings
from tests.conftest import FAST_ARGON2, AppFactory
from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem

PROXY = "203.0.113.7/32"  # the test client's address
OWNER = "192.0.2.10"
_HASH = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"


def settings(max_queued: int = 16, per_ip: int = 30) -> AuthSettings:
    return AuthSettings(
        argon2=FAST_ARGON2.model_copy(update={"max_concurrent": 1, "max_queued": max_queued}),
        throttle=ThrottleSettings(max_failures_per_ip=per_ip, max_registrations_per_ip=100),
        trusted_proxies=[PROXY],
    )


class OrderProbe:
    """Stands in for argon2 in the worker threads (hash, verify, verify_and_update):
    records each password as its hash starts, and holds it until let go."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self._go = threading.Semaphore(0)
        self.passwords: Passwords | None = None

    def let_go(self, n: int = 1) -> None:
        for _ in range(n):
            self._go.release()

    def _held(self, password: str) -> None:
        self.order.append(password)
        if not self._go.acquire(timeout=60):
            raise TimeoutError("never let go")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        probe = self

        def hash_(_: Any, password: str, *args: Any, **kwargs: Any) -> str:
            probe._held(password)
            return _HASH

        def verify(_: Any, password: str, *args: Any, **kwargs: Any) -> bool:
            probe._held(password)
            return password == PASSWORD

        def verify_and_update(_: Any, password: str, *args: Any, **kwargs: Any) -> Any:
            probe._held(password)
            return password == PASSWORD, None

        monkeypatch.setattr(PasswordHash, "hash", hash_)
        monkeypatch.setattr(PasswordHash, "verify", verify)
        monkeypatch.setattr(PasswordHash, "verify_and_update", verify_and_update)
        slot = Passwords.slot

        def seen(passwords: Passwords, client: str) -> HashSlot:
            probe.passwords = passwords
            return slot(passwords, client)

        monkeypatch.setattr(Passwords, "slot", seen)

    async def until(self, in_flight: int, started: int) -> None:
        """Until that many slots are held and that many hashes have started."""
        async with asyncio.timeout(60):
            while (
                self.passwords is None
                or self.passwords.in_flight() != in_flight
                or len(self.order) != started
            ):
                await asyncio.sleep(0.01)
        for _ in range(10):  # a wrong implementation's chance to start more
            await asyncio.sleep(0.01)


def log_in(
    client: httpx.AsyncClient, ip: str, password: str, email: str = "ana@example.com"
) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        client.post(
            "/api/auth/login",
            json={"email": email, "password": password},
            headers={"X-Forwarded-For": ip},
        )
    )


def sign_up(client: httpx.AsyncClient, ip: str, email: str) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        client.post(
            "/api/auth/register",
            json={"email": email, "password": email},
            headers={"X-Forwarded-For": ip},
        )
    )


def assert_retry(response: httpx.Response, status: int) -> dict[str, Any]:
    body = assert_problem(response, status)
    assert response.headers["retry-after"] == "1"
    return body


async def test_a_client_with_a_hash_in_flight_gets_429_for_another_without_hashing(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker = "198.51.100.66"
    async with app_client(auth=settings(per_ip=1)) as client:
        await register(client)
        token = (await login(client))["access_token"]
        probe = OrderProbe()
        probe.install(monkeypatch)

        first = log_in(client, attacker, "guess 1")
        await probe.until(in_flight=1, started=1)
        second_login = await log_in(client, attacker, "guess 2")
        a_registration = await sign_up(client, attacker, "new@example.com")
        a_deletion = await client.request(
            "DELETE",
            "/api/auth/me",
            json={"password": "guess 3"},
            headers={**bearer(token), "X-Forwarded-For": attacker},
        )
        # Same /64, another address: the same client.
        v6_first = log_in(client, "2001:db8:1:2::1", "guess 4", email="bob@example.com")
        await probe.until(in_flight=2, started=1)
        v6_second = await log_in(client, "2001:db8:1:2::ffff", "guess 5")
        refused_while_held = list(probe.order)
        probe.let_go(2)
        first_answer, v6_first_answer = await first, await v6_first

        # The refused ones were not counted: with one failure allowed per client, the
        # attacker had one (the first guess), and its next guess is refused for it,
        # with the window's Retry-After, not the busy one.
        counted = await log_in(client, attacker, "guess 6")

    assert refused_while_held == ["guess 1"]
    for response in (second_login, a_registration, a_deletion, v6_second):
        body = assert_retry(response, 429)
        assert body["type"].endswith("/password-check-in-progress")
    assert first_answer.status_code == 401
    assert v6_first_answer.status_code == 401
    body = assert_problem(counted, 429)
    assert body["type"].endswith("/too-many-attempts")
    assert int(counted.headers["retry-after"]) > 1
    assert probe.order == ["guess 1", "guess 4"]


async def test_a_busy_refusal_is_no_way_around_the_failure_count(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client, guesses one after the other, each racing a second one: every guess
    that is checked is counted, and no more are checked than the limit."""
    attacker = "198.51.100.66"
    async with app_client(auth=settings(per_ip=3)) as client:
        await register(client)
        probe = OrderProbe()
        probe.install(monkeypatch)
        answers = []
        for n in range(6):
            held = log_in(client, attacker, f"guess {n}")
            async with asyncio.timeout(60):  # until it holds the slot, or was refused
                while not held.done() and (
                    probe.passwords is None or probe.passwords.in_flight() == 0
                ):
                    await asyncio.sleep(0.01)
            racing = await log_in(client, attacker, f"racing {n}")
            probe.let_go()
            answers.append(((await held).status_code, racing.status_code))

    assert answers == [(401, 429)] * 3 + [(429, 429)] * 3
    assert probe.order == ["guess 0", "guess 1", "guess 2"]


async def test_when_max_queued_hashes_wait_a_new_client_gets_503_without_hashing(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_client(auth=settings(max_queued=2)) as client:
        await register(client)
        probe = OrderProbe()
        probe.install(monkeypatch)
        flood = []
        for n in range(3):  # one running, two waiting
            flood.append(log_in(client, f"198.51.100.{n}", f"flood {n}"))
            await probe.until(in_flight=n + 1, started=1)
        refused_login = await log_in(client, OWNER, PASSWORD)
        refused_registration = await sign_up(client, "192.0.2.11", "new@example.com")
        started_while_full = list(probe.order)
        probe.let_go(3)
        flood_answers = [(await task).status_code for task in flood]
        probe.let_go()
        retried = await log_in(client, OWNER, PASSWORD)

    for response in (refused_login, refused_registration):
        body = assert_retry(response, 503)
        assert body["type"].endswith("/password-checks-busy")
    assert started_while_full == ["flood 0"]
    assert flood_answers == [401] * 3
    assert retried.status_code == 200
    assert probe.order == ["flood 0", "flood 1", "flood 2", PASSWORD]


@pytest.mark.parametrize("max_queued", [1, 4])
async def test_a_fresh_clients_login_is_hashed_after_at_most_max_queued_others(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch, max_queued: int
) -> None:
    """A flood from many clients keeps the queue full; the owner gets in as soon as a
    place frees, and then waits for at most `max_queued` hashes, while the flood's
    further requests are refused."""
    async with app_client(auth=settings(max_queued=max_queued)) as client:
        await register(client)
        probe = OrderProbe()
        probe.install(monkeypatch)
        flood = []
        for n in range(max_queued + 1):
            flood.append(log_in(client, f"198.51.100.{n}", f"flood {n}"))
            await probe.until(in_flight=n + 1, started=1)
        probe.let_go()  # flood 0 ends: one place frees
        assert (await flood[0]).status_code == 401
        owner = log_in(client, OWNER, PASSWORD)
        await probe.until(in_flight=max_queued + 1, started=2)
        refused = [
            await log_in(client, f"198.51.100.{100 + n}", f"late flood {n}") for n in range(30)
        ]
        probe.let_go(max_queued + 1)
        owner_answer = await owner
        rest = [(await task).status_code for task in flood[1:]]

    assert owner_answer.status_code == 200
    assert [r.status_code for r in refused] == [503] * 30
    assert rest == [401] * max_queued
    # Hashed after the max_queued ones that were queued or running when it arrived.
    assert probe.order.index(PASSWORD) - 1 == max_queued
    assert probe.order == [f"flood {n}" for n in range(max_queued + 1)] + [PASSWORD]


def test_the_default_queue_bound() -> None:
    assert AuthSettings().argon2.max_queued == 16
