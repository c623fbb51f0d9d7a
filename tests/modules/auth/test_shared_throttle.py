"""The login and registration throttles shared by two auth replicas (the postgres store):
together they allow no more than the limits, where each alone would allow them again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.config import Settings
from app.kernel import limits
from app.kernel.limits import LimitSettings, MemoryStore
from app.modules.auth.settings import ThrottleSettings
from app.modules.auth.shared_throttle import SharedThrottle
from app.modules.auth.throttle import Throttled
from tests.conftest import AppFactory
from tests.support.accounts import PASSWORD, register
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.at = 900.0 * 2000 + 100  # 100 s into a 900 s window

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits, "now", clock)
    return clock


def shared(settings: Settings, store: str = "postgres", **throttle: int) -> dict[str, Any]:
    auth = settings.auth.model_copy(update={"throttle": ThrottleSettings(**throttle)})
    return {"auth": auth, "limits": LimitSettings(store=store)}  # type: ignore[arg-type]


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_failures_per_client_are_counted_across_replicas(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = shared(settings, max_failures_per_ip=3, max_failures_per_email=100)
    async with app_client(**changes) as first, app_client(**changes) as second:
        answers = [
            (await log_in(replica, f"guess{n}@example.com", "x")).status_code
            for n, replica in enumerate((first, second, first, second))
        ]
        assert answers == [401, 401, 401, 429]
        refused = await log_in(first, "guess9@example.com", "x")
        body = assert_problem(refused, 429)
        assert body["detail"]
        assert refused.headers["Retry-After"] == "800"  # the shared window's end


async def test_memory_replicas_each_allow_the_limit(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    """Why the shared store: with memory each replica counts alone."""
    changes = shared(settings, "memory", max_failures_per_ip=2, max_failures_per_email=100)
    async with app_client(**changes) as first, app_client(**changes) as second:
        answers = [
            (await log_in(replica, f"guess{n}@example.com", "x")).status_code
            for n, replica in enumerate((first, second, first, second))
        ]
        assert answers == [401, 401, 401, 401]


async def test_a_guarded_email_across_replicas_stays_open_to_its_owner(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = shared(settings, max_failures_per_ip=100, max_failures_per_email=2)
    async with (
        app_client(**changes) as first,
        app_client(client_ip="198.51.100.50", **changes) as second,
        app_client(client_ip="192.0.2.77", **changes) as owner,
    ):
        await register(first)
        assert (await log_in(first, "ana@example.com", "wrong")).status_code == 401
        assert (await log_in(second, "ana@example.com", "wrong")).status_code == 401
        # The email is guarded: refused to a client that failed, on any replica...
        assert_problem(await log_in(second, "ana@example.com", PASSWORD), 429)
        assert_problem(await log_in(first, "ana@example.com", PASSWORD), 429)
        # ...and open to one that has not: the owner's right password gets in.
        assert (await log_in(owner, "ana@example.com", PASSWORD)).status_code == 200
        assert (await log_in(owner, "ana@example.com", PASSWORD)).status_code == 200
        clock.at += 800  # the shared window ends; the replicas' own ones are still open
        assert (await log_in(first, "ana@example.com", "wrong")).status_code == 401


async def test_registrations_per_client_are_counted_across_replicas(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = shared(settings, max_registrations_per_ip=2)
    async with app_client(**changes) as first, app_client(**changes) as second:
        await register(first, "a@example.com")
        await register(second, "b@example.com")
        refused = await first.post(
            "/api/auth/register", json={"email": "c@example.com", "password": PASSWORD}
        )
        assert_problem(refused, 429)
        assert_problem(
            await second.post(
                "/api/auth/register", json={"email": "c@example.com", "password": PASSWORD}
            ),
            429,
        )


async def test_a_right_password_gives_back_the_clients_failures_for_that_email(
    clock: Clock,
) -> None:
    """The counters' bookkeeping, on a memory store (the same code as on PostgreSQL)."""
    throttle = SharedThrottle(
        MemoryStore(), ThrottleSettings(max_failures_per_email=2, max_failures_per_ip=100)
    )
    await throttle.attempt("ana", "1.1.1.1")  # a typo of the owner's
    await throttle.attempt("ana", "6.6.6.6")  # an attacker's guess
    with pytest.raises(Throttled):
        await throttle.attempt("ana", "6.6.6.6")  # guarded, and 6.6.6.6 has failed
    # The owner's client has failed too, so it is refused: it waits for the window...
    with pytest.raises(Throttled):
        await throttle.attempt("ana", "1.1.1.1")
    # ...and a fresh client of the owner's gets its password checked, and it is right:
    right = await throttle.attempt("ana", "2.2.2.2")
    await right.succeeded()
    # The email is still at its limit (the typo and the attacker's guess stay counted).
    with pytest.raises(Throttled):
        await throttle.attempt("ana", "6.6.6.6")
    clock.at += 800
    await throttle.attempt("ana", "6.6.6.6")  # a new window


async def test_an_attempt_another_throttle_refuses_counts_for_nothing(clock: Clock) -> None:
    throttle = SharedThrottle(
        MemoryStore(), ThrottleSettings(max_failures_per_email=100, max_failures_per_ip=2)
    )
    first = await throttle.attempt("ana", "1.1.1.1")
    await first.refused()
    await throttle.attempt("ana", "1.1.1.1")
    await throttle.attempt("bo", "1.1.1.1")
    with pytest.raises(Throttled):
        await throttle.attempt("cy", "1.1.1.1")
