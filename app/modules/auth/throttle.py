"""Throttling password guesses (login, account deletion) and registrations.

Guesses, in a sliding window of `window_seconds`:

- A client that failed `max_failures_per_ip` times (any emails) is refused (429).
- An email that failed `max_failures_per_email` times (all clients together) is guarded:
  it is refused to every client that failed at all within the window, and still open to a
  client that has not. That client's attempt is checked: a right password succeeds, a wrong
  one is a failure, and the client is refused from then on. So nobody can lock the owner
  out: the owner, from a client that has not failed, always gets the password checked.
- An attempt counts as a failure from the moment it is let through, before the password is
  hashed, and is refunded only when the password proves right. Concurrent guesses therefore
  cannot overrun the limits: no more are checked than the limits allow.
- A right password forgets that client's failures for that email (not the other clients'
  failures for it, and not that client's own count). Failures age out of the window.

Clients are IP addresses; IPv6 clients are counted per /64, the block one subscriber gets.
The state lives in this process: with several auth replicas each keeps its own windows.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from app.kernel.http import client_key
from app.modules.auth.settings import ThrottleSettings

_MAX_TRACKED_KEYS = 100_000


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class _Failure:
    """One attempt let through; it counts until refunded or aged out. Compared by identity."""

    __slots__ = ("at", "client", "email", "pending")

    def __init__(self, at: float, client: str, email: str) -> None:
        self.at = at
        self.client = client
        self.email = email
        self.pending = True  # the password is still being checked


class Attempt:
    """A context manager: leaving it without `succeeded()` keeps the failure."""

    def __init__(self, throttle: LoginThrottle, failure: _Failure) -> None:
        self._throttle = throttle
        self._failure = failure

    def succeeded(self) -> None:
        """The password was right: refund this attempt, forget the client's failures
        for this email."""
        self._throttle._refund(self._failure)

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._failure.pending = False


class LoginThrottle:
    def __init__(
        self, settings: ThrottleSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._by_email: dict[str, deque[_Failure]] = {}
        self._by_client: dict[str, deque[_Failure]] = {}

    def attempt(self, email: str, ip: str) -> Attempt:
        """Let one attempt through, counted as a failure at once, or raise Throttled.

        The check and the count happen with no await between them, so of concurrent
        attempts no more pass than the limits allow.
        """
        client = client_key(ip)
        wait = self._wait(email, client)
        if wait > 0:
            raise Throttled(max(1, math.ceil(wait)))
        now = self._clock()
        if len(self._by_email) + len(self._by_client) >= _MAX_TRACKED_KEYS:
            self._evict_expired(now)
        failure = _Failure(now, client, email)
        self._by_email.setdefault(email, deque()).append(failure)
        self._by_client.setdefault(client, deque()).append(failure)
        return Attempt(self, failure)

    def retry_after(self, email: str, ip: str) -> int | None:
        """Seconds until an attempt is let through, or None when it would be now."""
        wait = self._wait(email, client_key(ip))
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failures(self, email: str) -> int:
        """Failures counted against an email in the window (attempts in flight included)."""
        return len(self._window(self._by_email, email))

    def _wait(self, email: str, client: str) -> float:
        settings = self._settings
        horizon = self._clock() - settings.window_seconds
        by_client = self._window(self._by_client, client)
        by_email = self._window(self._by_email, email)
        waits = [0.0]
        if len(by_client) >= settings.max_failures_per_ip:
            # Allowed again once enough failures have aged out to fall under the limit.
            waits.append(by_client[len(by_client) - settings.max_failures_per_ip].at - horizon)
        if len(by_email) >= settings.max_failures_per_email and by_client:
            # Guarded: open again when the email falls under its limit, or when this
            # client's last failure ages out (a client that has not failed may try).
            email_opens = by_email[len(by_email) - settings.max_failures_per_email].at
            waits.append(min(email_opens, by_client[-1].at) - horizon)
        return max(waits)

    def _window(self, table: dict[str, deque[_Failure]], key: str) -> deque[_Failure]:
        window = table.get(key)
        if window is None:
            return deque()
        horizon = self._clock() - self._settings.window_seconds
        while window and window[0].at <= horizon:
            window.popleft()
        return window

    def _refund(self, failure: _Failure) -> None:
        by_client = self._by_client.get(failure.client)
        if by_client is not None and failure in by_client:
            by_client.remove(failure)
        by_email = self._by_email.get(failure.email)
        if by_email is not None:
            # This attempt, and the client's settled failures for the email (its typos).
            # Attempts of the client still in flight stay: they settle on their own.
            kept = [
                f
                for f in by_email
                if f is not failure and (f.client != failure.client or f.pending)
            ]
            by_email.clear()
            by_email.extend(kept)

    def _evict_expired(self, now: float) -> None:
        horizon = now - self._settings.window_seconds
        for table in (self._by_email, self._by_client):
            for key in [k for k, v in table.items() if not v or v[-1].at <= horizon]:
                del table[key]
            while len(table) >= _MAX_TRACKED_KEYS // 2:
                table.pop(next(iter(table)))


class RegistrationThrottle:
    """Registrations per client in a sliding window; each costs a full password hash,
    so each attempt that reaches the hash counts, whatever its outcome."""

    def __init__(
        self, settings: ThrottleSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = settings.max_registrations_per_ip
        self._window_seconds = settings.registration_window_seconds
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}

    def attempt(self, ip: str) -> None:
        """Count one registration, or raise Throttled."""
        client = client_key(ip)
        now = self._clock()
        horizon = now - self._window_seconds
        window = self._attempts.get(client)
        if window is not None:
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) >= self._limit:
                raise Throttled(max(1, math.ceil(window[len(window) - self._limit] - horizon)))
        if window is None:
            if len(self._attempts) >= _MAX_TRACKED_KEYS:
                for key in [k for k, v in self._attempts.items() if not v or v[-1] <= horizon]:
                    del self._attempts[key]
                while len(self._attempts) >= _MAX_TRACKED_KEYS:
                    self._attempts.pop(next(iter(self._attempts)))
            window = self._attempts.setdefault(client, deque())
        window.append(now)
