"""The throttles' windows and rules, with a clock the test moves."""

from __future__ import annotations

import pytest

from app.kernel.http import client_key
from app.modules.auth.settings import ThrottleSettings
from app.modules.auth.throttle import LoginThrottle, RegistrationThrottle, Throttled


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


def fail(guard: LoginThrottle, email: str, ip: str) -> None:
    with guard.attempt(email, ip):
        pass  # left without succeeded(): a wrong password


def succeed(guard: LoginThrottle, email: str, ip: str) -> None:
    with guard.attempt(email, ip) as attempt:
        attempt.succeeded()


def test_attempts_are_free_until_the_limit() -> None:
    guard = throttle(Clock())
    for _ in range(2):
        fail(guard, "ana", "1.1.1.1")

    assert guard.retry_after("ana", "1.1.1.1") is None


def test_the_limit_blocks_the_failing_client_until_the_oldest_failure_ages_out() -> None:
    clock = Clock()
    guard = throttle(clock)
    for step in range(3):
        clock.now = 1000.0 + step * 10
        fail(guard, "ana", "1.1.1.1")

    clock.now = 1025.0
    assert guard.retry_after("ana", "1.1.1.1") == 35  # t=1000 leaves the window at t=1060
    with pytest.raises(Throttled) as refused:
        guard.attempt("ana", "1.1.1.1")
    assert refused.value.retry_after == 35

    clock.now = 1060.5
    assert guard.retry_after("ana", "1.1.1.1") is None


def test_a_guarded_email_stays_open_to_a_client_that_has_not_failed() -> None:
    guard = throttle(Clock())
    for _ in range(3):
        fail(guard, "ana", "6.6.6.6")  # the attacker
    with pytest.raises(Throttled):
        guard.attempt("ana", "6.6.6.6")  # ...is refused from then on
    assert guard.failures("ana") == 3

    # The owner, from another client, gets the password checked, every time it is right.
    for _ in range(3):
        succeed(guard, "ana", "2.2.2.2")
    assert guard.failures("ana") == 3  # the owner's logins do not refund the attacker

    # A wrong guess from a fresh client is checked once, and then that client is refused.
    fail(guard, "ana", "7.7.7.7")
    with pytest.raises(Throttled):
        guard.attempt("ana", "7.7.7.7")
    # A client that failed anywhere in the window is not fresh for a guarded email.
    fail(guard, "bob", "8.8.8.8")
    with pytest.raises(Throttled):
        guard.attempt("ana", "8.8.8.8")
    # The failing client's own other emails are not guarded.
    succeed(guard, "bob", "8.8.8.8")


def test_a_refused_client_is_told_the_earlier_of_its_two_ways_back_in() -> None:
    clock = Clock()
    guard = throttle(clock, per_email=2)
    fail(guard, "ana", "6.6.6.6")  # t=1000, by the attacker
    clock.now = 1030.0
    fail(guard, "ana", "2.2.2.2")  # t=1030, the owner's typo: the email is now guarded

    # The email falls under its limit at t=1060 (the attacker's failure ages out),
    # before the owner's own failure does (t=1090).
    clock.now = 1040.0
    assert guard.retry_after("ana", "2.2.2.2") == 20


def test_attempts_in_flight_count_so_a_burst_cannot_overrun_the_limit() -> None:
    guard = throttle(Clock(), per_email=5, per_ip=30)
    granted = []
    refused = 0
    for _ in range(40):  # all let through or refused before any password is checked
        try:
            granted.append(guard.attempt("ana", "6.6.6.6"))
        except Throttled:
            refused += 1

    assert (len(granted), refused) == (5, 35)


def test_a_right_password_refunds_itself_and_forgets_that_clients_typos_only() -> None:
    guard = throttle(Clock(), per_email=4)
    fail(guard, "ana", "6.6.6.6")
    fail(guard, "ana", "2.2.2.2")
    fail(guard, "ana", "2.2.2.2")

    succeed(guard, "ana", "2.2.2.2")

    assert guard.failures("ana") == 1  # the other client's failure stays


def test_a_success_keeps_the_same_clients_attempts_still_in_flight() -> None:
    guard = throttle(Clock(), per_email=3)
    in_flight = guard.attempt("ana", "6.6.6.6")  # a guess of the same burst, not settled

    succeed(guard, "ana", "6.6.6.6")

    assert guard.failures("ana") == 1
    with in_flight:
        pass  # it turns out wrong: it stays a failure
    assert guard.failures("ana") == 1


def test_the_client_limit_applies_across_emails_and_a_success_does_not_clear_it() -> None:
    guard = throttle(Clock(), per_email=100, per_ip=3)
    for n in range(2):
        fail(guard, f"guess{n}", "6.6.6.6")
    succeed(guard, "mine", "6.6.6.6")  # the attacker's own account
    fail(guard, "guess2", "6.6.6.6")

    with pytest.raises(Throttled):
        guard.attempt("guess3", "6.6.6.6")
    assert guard.retry_after("guess3", "6.6.6.7") is None


def test_ipv6_clients_are_counted_per_64() -> None:
    guard = throttle(Clock(), per_email=100, per_ip=2)
    fail(guard, "a", "2001:db8:1:2::1")
    fail(guard, "b", "2001:db8:1:2:ffff::9")

    assert guard.retry_after("c", "2001:db8:1:2:abcd::1") is not None
    assert guard.retry_after("c", "2001:db8:1:3::1") is None
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("unknown") == "unknown"


def test_registrations_are_limited_per_client_in_their_window() -> None:
    clock = Clock()
    settings = ThrottleSettings(max_registrations_per_ip=2, registration_window_seconds=100)
    guard = RegistrationThrottle(settings, clock=clock)
    guard.attempt("1.1.1.1")
    clock.now = 1010.0
    guard.attempt("1.1.1.1")

    with pytest.raises(Throttled) as refused:
        guard.attempt("1.1.1.1")
    assert refused.value.retry_after == 90
    guard.attempt("1.1.1.2")  # another client

    clock.now = 1100.5
    guard.attempt("1.1.1.1")  # the first aged out
