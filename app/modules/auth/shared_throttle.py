"""The login and registration throttles' counts shared by auth's replicas.

throttle.py keeps its sliding windows in the process: with several replicas each would
allow the limits. With `ENCURTA_LIMITS__STORE=postgres` these counters, in auth's
database (app.kernel.limits), are checked as well, so all replicas together allow no more:

- failures per client (`max_failures_per_ip`), per email (`max_failures_per_email`: then
  refused to a client that has failed within the window, open to one that has not), and
  registrations per client, each a counter of the store;
- an attempt counts as a failure before the password is checked; a right password gives
  back the attempt and the client's failures for that email (a third counter, per email
  and client, says how many), not other clients' failures and not the client's own count.

The shared counters are fixed windows of the same length (app.kernel.limits): across a
window's edge a client may get up to twice the limit, where the in-process sliding window
(still applied within each replica) is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.kernel.http import client_key
from app.kernel.limits import Limit, Store
from app.modules.auth.settings import ThrottleSettings
from app.modules.auth.throttle import Attempt as LocalAttempt
from app.modules.auth.throttle import LoginThrottle, RegistrationThrottle, Throttled

__all__ = ["Guard", "SharedThrottle"]

_UNLIMITED = 2**31 - 1  # the per email and client counter is only read


class SharedThrottle:
    """The counters in the shared store."""

    def __init__(self, store: Store, settings: ThrottleSettings) -> None:
        window = settings.window_seconds
        per_ip, per_email = settings.max_failures_per_ip, settings.max_failures_per_email
        self._client = Limit(store, "login-failures-per-client", per_ip, window)
        self._email = Limit(store, "login-failures-per-email", per_email, window)
        self._pair = Limit(store, "login-failures-per-email-and-client", _UNLIMITED, window)
        self._registrations = Limit(
            store,
            "registrations-per-client",
            settings.max_registrations_per_ip,
            settings.registration_window_seconds,
        )

    async def attempt(self, email: str, ip: str) -> SharedAttempt:
        """Count one failure, or raise Throttled (a refused attempt is given back)."""
        client = client_key(ip)
        by_client = await self._client.hit(client)
        assert by_client is not None  # the settings allow no limit of 0
        if not by_client.allowed:
            raise Throttled(by_client.reset_seconds)
        by_email = await self._email.hit(email)
        assert by_email is not None
        if not by_email.allowed and by_client.hits > 1:  # guarded, and this client failed
            await self._client.hit(client, -1)
            await self._email.hit(email, -1)
            raise Throttled(by_email.reset_seconds)
        await self._pair.hit(f"{email} {client}")
        return SharedAttempt(self, email, client)

    async def _give_back(self, email: str, client: str) -> None:
        """This attempt counts for nothing (another throttle refused it)."""
        await self._client.hit(client, -1)
        await self._email.hit(email, -1)
        await self._pair.hit(f"{email} {client}", -1)

    async def _refund(self, email: str, client: str) -> None:
        await self._client.hit(client, -1)
        pair = await self._pair.hit(f"{email} {client}", 0)
        failed = pair.hits if pair is not None else 0
        if failed:
            await self._email.hit(email, -failed)
            await self._pair.hit(f"{email} {client}", -failed)

    async def register(self, ip: str) -> None:
        """Count one registration, or raise Throttled."""
        decision = await self._registrations.hit(client_key(ip))
        if decision is not None and not decision.allowed:
            raise Throttled(decision.reset_seconds)


class SharedAttempt:
    def __init__(self, throttle: SharedThrottle, email: str, client: str) -> None:
        self._throttle = throttle
        self._email = email
        self._client = client

    async def succeeded(self) -> None:
        await self._throttle._refund(self._email, self._client)

    async def refused(self) -> None:
        await self._throttle._give_back(self._email, self._client)


class Attempt:
    """One attempt under both throttles; `succeeded()` when the password was right."""

    def __init__(self, local: LocalAttempt, shared: SharedAttempt | None) -> None:
        self._local = local
        self._shared = shared

    async def succeeded(self) -> None:
        self._local.succeeded()
        if self._shared is not None:
            await self._shared.succeeded()


class Guard:
    """The throttles a request goes through: this process's (throttle.py, exact) and, with
    the postgres store, the shared counters."""

    def __init__(
        self,
        logins: LoginThrottle,
        registrations: RegistrationThrottle,
        shared: SharedThrottle | None = None,
    ) -> None:
        self.logins = logins
        self.registrations = registrations
        self.shared = shared

    @asynccontextmanager
    async def attempt(self, email: str, ip: str) -> AsyncIterator[Attempt]:
        """Count one password guess (raises Throttled); kept as a failure unless
        `succeeded()` is awaited. The shared count first: a request it refuses is not
        counted here."""
        shared = await self.shared.attempt(email, ip) if self.shared is not None else None
        try:
            local = self.logins.attempt(email, ip)
        except Throttled:
            if shared is not None:
                await shared.refused()  # refused here: no failure there either
            raise
        with local:
            yield Attempt(local, shared)

    async def register(self, ip: str) -> None:
        """Count one registration (raises Throttled)."""
        if self.shared is not None:
            await self.shared.register(ip)
        self.registrations.attempt(ip)
