"""The shortener's rate limits: links created (per user, per client) and unknown codes
asked for (per client: scanning for codes).

Counted in the store `ENCURTA_LIMITS__STORE` names (app.kernel.limits). Every way a link is
created counts (the links API, the form, YOURLS' shorturl, Shlink's POST), imports not
(they have their own bound). Clients are addresses (X-Forwarded-For from trusted proxies
only), IPv6 ones per /64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from uuid import UUID

from starlette.requests import Request
from starlette.types import Scope

from app.kernel import limits as kernel_limits
from app.kernel.http import client_address, client_ip, client_key
from app.kernel.limits import Decision, Limit, Store, too_many
from app.kernel.problems import Problem
from app.kernel.settings import IPNetwork
from app.modules.shortener.settings import ShortenerLimits

__all__ = ["CreationLimits", "ScanGuard"]

_MAX_BLOCKED = 100_000


class CreationLimits:
    """Links created per user and per client, checked before a link is made."""

    def __init__(
        self, store: Store, settings: ShortenerLimits, trusted_proxies: Sequence[IPNetwork]
    ) -> None:
        window = settings.window_seconds
        self.per_user = Limit(store, "links-per-user", settings.links_per_user, window)
        self.per_client = Limit(store, "links-per-client", settings.links_per_client, window)
        self._trusted = trusted_proxies

    async def check(self, request: Request, owner_id: UUID | None) -> None:
        """Count one link about to be created, or raise the 429 Problem naming the limit.
        The user's limit is checked first: a user refused costs the client nothing. The
        RateLimit headers of the tighter limit are left in `request.state.rate_limit`."""
        decisions = []
        if owner_id is not None:
            decisions.append(await self.per_user.check(str(owner_id), "links created by this user"))
        client = client_key(client_ip(request, self._trusted))
        decisions.append(await self.per_client.check(client, "links created from this address"))
        counted = [d for d in decisions if d is not None]
        if counted:
            tightest = min(counted, key=lambda d: d.remaining)
            request.state.rate_limit = tightest.headers()


class ScanGuard:
    """Unknown codes asked for per client. Only a miss is counted (a known code's redirect
    never touches the store); a client over the limit is refused every `/{code}`, known
    codes too, until the window ends: otherwise it could still tell a known code (a
    redirect) from an unknown one (a 429). Who is refused is remembered in this process
    (`blocking` is False while nobody is, which the redirect checks first)."""

    def __init__(
        self, store: Store, settings: ShortenerLimits, trusted_proxies: Sequence[IPNetwork]
    ) -> None:
        self.limit = Limit(
            store,
            "unknown-codes-per-client",
            settings.unknown_codes_per_client,
            settings.window_seconds,
        )
        self._trusted = trusted_proxies
        # client -> when it may ask again. Empty while nobody is refused: the redirect of
        # a cached link checks only that (a dict's truth costs ~20 ns, a property ~500).
        self.blocked: dict[str, float] = {}  # (cleared, never replaced: the redirect holds it)
        self._last_until = 0.0  # when the last of them may

    @property
    def blocking(self) -> bool:
        """Anyone refused now? Free while nobody is; forgets them all once all may ask."""
        if not self.blocked:
            return False
        if kernel_limits.now() >= self._last_until:
            self.blocked.clear()
            return False
        return True

    def refused(self, scope: Scope) -> Problem | None:
        """The 429 for a client refused until its window ends, or None."""
        client = self._client(scope)
        until = self.blocked.get(client)
        if until is None:
            return None
        left = until - kernel_limits.now()
        if left <= 0:
            del self.blocked[client]
            return None
        reset = max(1, math.ceil(left))
        decision = Decision(False, self.limit.limit, 0, reset, self.limit.window_seconds)
        return self._problem(decision)

    async def missed(self, scope: Scope) -> Problem | None:
        """Count one unknown code asked for; the 429 once the client is over the limit."""
        client = self._client(scope)
        decision = await self.limit.hit(client)
        if decision is None or decision.allowed:
            return None
        at = kernel_limits.now()
        if len(self.blocked) >= _MAX_BLOCKED:
            for key in [k for k, until in self.blocked.items() if until <= at]:
                del self.blocked[key]
        if len(self.blocked) < _MAX_BLOCKED:
            self.blocked[client] = at + decision.reset_seconds
            self._last_until = max(self._last_until, at + decision.reset_seconds)
        return self._problem(decision)

    def _problem(self, decision: Decision) -> Problem:
        return too_many(self.limit, decision, "unknown codes asked for from this address")

    def _client(self, scope: Scope) -> str:
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        client = scope.get("client")
        return client_key(client_address(client[0] if client else None, forwarded, self._trusted))
