"""Password guessing against the real app: nobody can lock the owner out, and bursts of
concurrent guesses get no more passwords checked than the limits allow.

Clients are told apart by X-Forwarded-For from a trusted proxy (the test client's own
address), as behind a real proxy. Checked passwords are counted by wrapping
Passwords.verify; in the bursts every checked guess is held inside it until the whole
burst has arrived, the worst case for a check made before the hash. A client has one
password check in flight at a time, so of a burst from one client only the first is
checked and the rest are refused (429) before the throttle; its counting of attempts in
flight is the second line, tested on its own in test_throttle.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import pytest

from app.modules.auth.passwords import Passwords
from app.modules.auth.settings import AuthSettings, ThrottleSettings
from tests.conftest import FAST_ARGON2, AppFactory
from tests.support.accounts import PASSWORD, bearer, register
from tests.support.problems import assert_problem

PROXY = "203.0.113.7/32"  # the test client's address
ATTACKER, OWNER = "198.51.100.66", "192.0.2.10"
BURST = 40
RIGHT_ONE_AT = 20  # the 21st guess of the burst is the right password


def proxied(throttle: ThrottleSettings | None = None) -> AuthSettings:
    return AuthSettings(
        argon2=FAST_ARGON2, throttle=throttle or ThrottleSettings(), trusted_proxies=[PROXY]
    )


def from_client(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def log_in(
    client: httpx.AsyncClient, ip: str, password: str, email: str = "ana@example.com"
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers=from_client(ip),
    )


class VerifyGate:
    """Counts Passwords.verify calls; while closed, holds each call before the hash."""

    def __init__(self) -> None:
        self.calls = 0
        self.opened = asyncio.Event()

    async def settled(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Until every request is answered or held in verify."""
        async with asyncio.timeout(60):
            while self.calls + sum(task.done() for task in tasks) < len(tasks):
                await asyncio.sleep(0.01)

    async def burst(self, requests: list[Coroutine[Any, Any, httpx.Response]]) -> list[int]:
        """All at once, every checked one held before its hash until all have arrived."""
        self.opened.clear()
        tasks = [asyncio.create_task(request) for request in requests]
        await self.settled(tasks)
        self.opened.set()
        return [response.status_code for response in await asyncio.gather(*tasks)]

    async def in_order(self, requests: list[Coroutine[Any, Any, httpx.Response]]) -> list[int]:
        """Arriving one after the other, in this order, and every checked one still held
        when the next arrives: as concurrent as a burst, in a known order."""
        self.opened.clear()
        tasks: list[asyncio.Task[httpx.Response]] = []
        for request in requests:
            tasks.append(asyncio.create_task(request))
            await self.settled(tasks)
        self.opened.set()
        return [response.status_code for response in await asyncio.gather(*tasks)]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[VerifyGate]:
    gate = VerifyGate()
    gate.opened.set()  # open unless a test closes it
    verify = Passwords.verify

    async def counted(self: Passwords, password: str, hashed: str | None, **slot: Any) -> Any:
        gate.calls += 1
        await gate.opened.wait()
        return await verify(self, password, hashed, **slot)

    monkeypatch.setattr(Passwords, "verify", counted)
    yield gate


async def test_wrong_guesses_from_one_client_do_not_lock_the_owner_out(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    """The acceptance case of issue 8, with the default limits (5 per email)."""
    async with app_client(auth=proxied()) as client:
        await register(client)
        gate.calls = 0

        answers = [(await log_in(client, ATTACKER, f"guess {n}")).status_code for n in range(6)]
        owner = await log_in(client, OWNER, PASSWORD)
        attacker_with_the_password = await log_in(client, ATTACKER, PASSWORD)
        owner_again = await log_in(client, OWNER, PASSWORD)

    assert answers == [401] * 5 + [429]
    assert owner.status_code == 200, owner.text
    assert_problem(attacker_with_the_password, 429)
    assert 1 <= int(attacker_with_the_password.headers["retry-after"]) <= 900
    assert owner_again.status_code == 200
    assert gate.calls == 5 + 2  # the attacker's five, the owner's two; nothing refused


async def test_a_client_that_failed_is_refused_while_the_email_is_guarded(
    app_client: AppFactory,
) -> None:
    async with app_client(auth=proxied()) as client:
        await register(client)
        for n in range(5):
            assert (await log_in(client, ATTACKER, f"guess {n}")).status_code == 401

        fresh_guess = await log_in(client, "198.51.100.67", "another guess")
        its_second = await log_in(client, "198.51.100.67", PASSWORD)

    assert_problem(fresh_guess, 401)  # checked: it had not failed
    assert_problem(its_second, 429)  # it has now


def guesses() -> list[str]:
    passwords = [f"guess {n}" for n in range(BURST)]
    passwords[RIGHT_ONE_AT] = PASSWORD
    return passwords


async def test_a_burst_of_guesses_gets_no_more_checked_than_the_limit(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    async with app_client(auth=proxied()) as client:  # 5 per email, 30 per client
        await register(client)
        gate.calls = 0

        answers = await gate.burst([log_in(client, ATTACKER, guess) for guess in guesses()])
        checked = gate.calls
        owner = await log_in(client, OWNER, PASSWORD)

    print(f"burst of {BURST} logins: {checked} verified, statuses {sorted(answers)}")
    assert checked == 1  # the client's one hash at a time
    assert sum(status != 429 for status in answers) == 1
    assert answers.count(200) <= 1  # the right one, if it happened to arrive in the first 5
    assert owner.status_code == 200


async def test_the_right_password_21st_in_a_burst_is_never_checked(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    async with app_client(auth=proxied()) as client:
        await register(client)
        gate.calls = 0

        answers = await gate.in_order([log_in(client, ATTACKER, guess) for guess in guesses()])

    print(f"in-order burst of {BURST} logins: {gate.calls} verified, statuses {answers}")
    assert gate.calls == 1
    assert answers == [401] + [429] * (BURST - 1)


async def test_a_burst_of_wrong_guesses_without_holding_them_is_bounded_too(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    """No hold: whatever order the requests run in, at most 5 wrong ones are checked."""
    async with app_client(auth=proxied()) as client:
        await register(client)
        gate.calls = 0

        responses = await asyncio.gather(
            *(log_in(client, ATTACKER, f"guess {n}") for n in range(BURST))
        )

    answers = [response.status_code for response in responses]
    assert 1 <= gate.calls <= 5  # one at a time; those after one another are counted
    assert sorted(answers) == [401] * gate.calls + [429] * (BURST - gate.calls)


async def test_a_burst_against_the_client_limit_across_emails_is_bounded(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    limits = ThrottleSettings(max_failures_per_email=100, max_failures_per_ip=7)
    async with app_client(auth=proxied(limits)) as client:
        answers = await gate.burst(
            [log_in(client, ATTACKER, "x", email=f"user{n}@example.com") for n in range(BURST)]
        )

    assert gate.calls == 1
    assert sorted(answers) == [401] + [429] * (BURST - 1)


async def delete_me(
    client: httpx.AsyncClient, token: str, ip: str, password: str
) -> httpx.Response:
    return await client.request(
        "DELETE",
        "/api/auth/me",
        json={"password": password},
        headers={**bearer(token), **from_client(ip)},
    )


async def test_a_burst_of_account_deletions_gets_no_more_checked_than_the_limit(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    """A stolen access token and a burst of password guesses to delete the account."""
    async with app_client(auth=proxied()) as client:
        await register(client)
        token = (await log_in(client, OWNER, PASSWORD)).json()["access_token"]
        gate.calls = 0

        answers = await gate.burst([delete_me(client, token, ATTACKER, g) for g in guesses()])
        checked = gate.calls
        me = await client.get("/api/auth/me", headers=bearer(token))

    print(f"burst of {BURST} deletions: {checked} verified, statuses {sorted(answers)}")
    assert checked == 1
    assert sum(status != 429 for status in answers) == 1
    assert answers.count(204) <= 1
    assert me.status_code == (401 if 204 in answers else 200)


async def test_the_right_password_21st_in_a_burst_of_deletions_is_never_checked(
    app_client: AppFactory, gate: VerifyGate
) -> None:
    async with app_client(auth=proxied()) as client:
        await register(client)
        token = (await log_in(client, OWNER, PASSWORD)).json()["access_token"]
        gate.calls = 0

        answers = await gate.in_order([delete_me(client, token, ATTACKER, g) for g in guesses()])
        still_there = await client.get("/api/auth/me", headers=bearer(token))
        owner_login = await log_in(client, OWNER, PASSWORD)

    assert gate.calls == 1 + 1  # and the owner's login
    assert answers == [403] + [429] * (BURST - 1)
    assert still_there.status_code == 200
    assert owner_login.status_code == 200


async def test_the_owner_can_still_delete_the_account_after_an_attack(
    app_client: AppFactory,
) -> None:
    async with app_client(auth=proxied()) as client:
        await register(client)
        token = (await log_in(client, OWNER, PASSWORD)).json()["access_token"]
        for n in range(6):
            await delete_me(client, token, ATTACKER, f"guess {n}")

        deleted = await delete_me(client, token, OWNER, PASSWORD)

    assert deleted.status_code == 204
