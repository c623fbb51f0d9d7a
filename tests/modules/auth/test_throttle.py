"""The login throttle's window, with a clock the test moves."""

from __future__ import annotations

from app.modules.auth.settings import ThrottleSettings
from app.modules.auth.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, per_email: int = 3, per_ip: int = 10) -> LoginThrottle:
    settings = ThrottleSettings(
        max_failures_per_email=per_email, max_failures_per_ip=per_ip, window_seconds=60
    )
    return LoginThrottle(settings, clock=clock)


def test_attempts_are_free_until_the_limit() -> None:
    clock = Clock()
    guard = throttle(clock)
    for _ in range(2):
        guard.record_failure("ana", "ip")

    assert guard.retry_after("ana", "ip") is None


def test_the_limit_blocks_until_the_oldest_failure_ages_out() -> None:
    clock = Clock()
    guard = throttle(clock)
    for step in range(3):
        clock.now = 1000.0 + step * 10
        guard.record_failure("ana", "ip")

    clock.now = 1025.0
    assert guard.retry_after("ana", "ip") == 35  # the first failure (t=1000) leaves at t=1060

    clock.now = 1060.5
    assert guard.retry_after("ana", "ip") is None  # the owner is slowed down, never locked out


def test_a_success_clears_the_emails_failures_but_not_the_ips() -> None:
    clock = Clock()
    guard = throttle(clock, per_email=2, per_ip=3)
    for _ in range(3):
        guard.record_failure("ana", "ip")

    guard.record_success("ana")

    assert guard.retry_after("ana", "other-ip") is None
    assert guard.retry_after("bob", "ip") is not None
