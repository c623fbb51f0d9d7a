"""What registration and hashing may cost: registrations per client are limited, and no
more password hashes run at once than the setting allows, whatever arrives."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash

from app.modules.auth.passwords import Passwords
from app.modules.auth.settings import AuthSettings, ThrottleSettings
from tests.conftest import FAST_ARGON2, AppFactory
from tests.support.accounts import PASSWORD
from tests.support.problems import assert_problem

PROXY = "203.0.113.7/32"


async def sign_up(client: httpx.AsyncClient, email: str, ip: str = "192.0.2.1") -> httpx.Response:
    return await client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": ip},
    )


async def test_registrations_from_one_client_are_limited_with_retry_after(
    app_client: AppFactory,
) -> None:
    limited = AuthSettings(
        argon2=FAST_ARGON2,
        throttle=ThrottleSettings(max_registrations_per_ip=3),
        trusted_proxies=[PROXY],
    )
    async with app_client(auth=limited) as client:
        first = [await sign_up(client, f"user{n}@example.com") for n in range(2)]
        taken = await sign_up(client, "user0@example.com")  # a 409 cost a hash too
        refused = await sign_up(client, "user9@example.com")
        other_client = await sign_up(client, "user9@example.com", ip="192.0.2.2")

    assert [r.status_code for r in first] == [201, 201]
    assert_problem(taken, 409)
    body = assert_problem(refused, 429)
    assert "registrations" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert other_client.status_code == 201


def test_the_default_registration_limit_is_sane() -> None:
    defaults = ThrottleSettings()
    assert defaults.max_registrations_per_ip == 10
    assert defaults.registration_window_seconds == 3600
    assert AuthSettings().argon2.max_concurrent == 1


class HashProbe:
    """Stands in for the argon2 hash in the worker threads: counts how many run at once,
    and holds each until released. Also counts the hashes asked for on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.asked = 0
        self.running = 0
        self.most = 0
        self.started = 0
        self.release = threading.Event()

    def __call__(self, password: str, *args: Any, **kwargs: Any) -> str:
        with self._lock:
            self.running += 1
            self.started += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(timeout=60)
            return "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
        finally:
            with self._lock:
                self.running -= 1

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(PasswordHash, "hash", self)
        hash_password = Passwords.hash

        async def asked(passwords: Passwords, password: str, **slot: Any) -> str:
            self.asked += 1  # and handed to the pool before the first await
            return await hash_password(passwords, password, **slot)

        monkeypatch.setattr(Passwords, "hash", asked)

    async def wait_for(self, asked: int, started: int) -> None:
        async with asyncio.timeout(60):
            while self.asked < asked or self.started < started:
                await asyncio.sleep(0.01)
        # Every hash asked for is in the pool: give threads a moment to start more. They
        # must not (this only gives a wrong implementation its chance to show).
        for _ in range(10):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("max_concurrent", [1, 2])
async def test_no_more_hashes_run_at_once_than_the_setting(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch, max_concurrent: int
) -> None:
    settings = AuthSettings(
        argon2=FAST_ARGON2.model_copy(update={"max_concurrent": max_concurrent}),
        trusted_proxies=[PROXY],
    )
    probe = HashProbe()
    async with app_client(auth=settings) as client:
        probe.install(monkeypatch)
        tasks = [  # from 8 clients: each may have one hash in flight
            asyncio.create_task(sign_up(client, f"user{n}@example.com", ip=f"192.0.2.{n + 1}"))
            for n in range(8)
        ]
        await probe.wait_for(asked=8, started=max_concurrent)
        running_while_held = probe.running
        probe.release.set()
        responses = await asyncio.gather(*tasks)

    assert running_while_held == max_concurrent
    assert probe.most == max_concurrent
    assert probe.started == 8
    assert [r.status_code for r in responses] == [201] * 8


async def test_a_cancelled_request_does_not_free_its_hash_thread_early(
    app_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that hangs up mid-hash must not let a further hash start beside it."""
    settings = AuthSettings(
        argon2=FAST_ARGON2.model_copy(update={"max_concurrent": 1}), trusted_proxies=[PROXY]
    )
    probe = HashProbe()
    async with app_client(auth=settings) as client:
        probe.install(monkeypatch)
        first = asyncio.create_task(sign_up(client, "first@example.com"))
        await probe.wait_for(asked=1, started=1)
        first.cancel()
        second = asyncio.create_task(sign_up(client, "second@example.com", ip="192.0.2.2"))
        await probe.wait_for(asked=2, started=1)
        started_while_held = probe.started
        probe.release.set()
        response = await second

    assert started_while_held == 1
    assert probe.most == 1
    assert response.status_code == 201
