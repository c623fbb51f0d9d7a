"""Login throttling: a sliding window of failures per email and per client IP.

Failures age out of the window, so the real owner is slowed down, never locked out for
good; a successful login clears that email's failures. The state lives in this process:
with several auth replicas each keeps its own window (the limit then multiplies).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from app.modules.auth.settings import ThrottleSettings

_MAX_TRACKED_KEYS = 100_000


class LoginThrottle:
    def __init__(
        self, settings: ThrottleSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, email: str, ip: str) -> int | None:
        """Seconds until a new attempt is allowed, or None when it is allowed now."""
        waits = [
            self._wait(f"email:{email}", self._settings.max_failures_per_email),
            self._wait(f"ip:{ip}", self._settings.max_failures_per_ip),
        ]
        longest = max(waits)
        return math.ceil(longest) if longest > 0 else None

    def record_failure(self, email: str, ip: str) -> None:
        now = self._clock()
        if len(self._failures) >= _MAX_TRACKED_KEYS:
            self._evict_expired(now)
        for key in (f"email:{email}", f"ip:{ip}"):
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, email: str) -> None:
        self._failures.pop(f"email:{email}", None)

    def _wait(self, key: str, limit: int) -> float:
        window = self._failures.get(key)
        if not window:
            return 0.0
        horizon = self._clock() - self._settings.window_seconds
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) < limit:
            return 0.0
        # Allowed again once enough failures have aged out to fall under the limit.
        return window[len(window) - limit] - horizon

    def _evict_expired(self, now: float) -> None:
        horizon = now - self._settings.window_seconds
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= horizon]:
            del self._failures[key]
        while len(self._failures) >= _MAX_TRACKED_KEYS:
            self._failures.pop(next(iter(self._failures)))
