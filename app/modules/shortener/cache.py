"""A bounded in-process cache of links for the redirect path.

Our own writes evict their entries at once; entries also expire after a short TTL, which
bounds how long a change made by another replica goes unseen. Unknown codes are cached
too (briefly), so a scanner probing random codes does not hit the database each time.
What fills the cache on a miss (lookup.py) hears of every eviction, so that an answer it
read before one of our writes is not cached after it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import quote_from_bytes
from uuid import UUID

from app.modules.shortener.rules import Rule


@dataclass(frozen=True, slots=True)
class CachedLink:
    id: UUID
    code: str
    target_url: str
    expires_at: datetime | None
    deleted: bool
    valid_from: datetime | None = None
    forward_query: bool = False
    max_visits: int | None = None
    has_password: bool = False  # the hash itself is read only when a password is given
    rules: tuple[Rule, ...] = ()
    # Why the link answers 410 though it exists (disabled by an admin, its domain blocked):
    # decided when it is loaded into the cache, never per redirect.
    refused: str | None = None
    # The redirect's headers, encoded once per cached link rather than once per redirect:
    # for ASGI, and as the lines of the express lane's head (app.kernel.express).
    redirect_headers: tuple[tuple[bytes, bytes], ...] = field(init=False)
    redirect_lines: bytes = field(init=False)
    # Answered only after a look at the database, the clock or the request (not valid yet,
    # a visit limit, a password, redirect rules): never in the express lane's fast path.
    guarded: bool = field(init=False)

    def __post_init__(self) -> None:
        headers = (
            (b"location", self.target_url.encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        )
        object.__setattr__(self, "redirect_headers", headers)
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        object.__setattr__(self, "redirect_lines", lines)
        guarded = (
            self.valid_from is not None
            or self.max_visits is not None
            or self.has_password
            or bool(self.rules)
        )
        object.__setattr__(self, "guarded", guarded)

    def is_gone(self, now: datetime | None = None) -> bool:
        """Deleted, refused, or past its expiry."""
        if self.deleted or self.refused is not None:
            return True
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def is_pending(self, now: datetime | None = None) -> bool:
        """Not valid yet: it answers like an unknown code."""
        return self.valid_from is not None and self.valid_from > (now or datetime.now(UTC))

    def aimed(self, target_url: str | None) -> CachedLink:
        """This link redirecting to `target_url` (a redirect rule's), or itself for None."""
        return self if target_url is None else replace(self, target_url=target_url)

    def location(self, query: bytes) -> bytes:
        """The target, with the visit's query string appended when the link forwards it
        (before any fragment; bytes outside printable ASCII percent-encoded)."""
        target = self.target_url.encode("latin-1")
        if not (self.forward_query and query):
            return target
        target, hash_, fragment = target.partition(b"#")
        joiner = b"&" if b"?" in target else b"?"
        return (
            target + joiner + quote_from_bytes(query, safe=_QUERY_SAFE).encode() + hash_ + fragment
        )

    def headers_for(self, query: bytes) -> tuple[tuple[bytes, bytes], ...]:
        if not (self.forward_query and query):
            return self.redirect_headers
        return ((b"location", self.location(query)), *self.redirect_headers[1:])

    def lines_for(self, query: bytes) -> bytes:
        if not (self.forward_query and query):
            return self.redirect_lines
        return b"".join(name + b": " + value + b"\r\n" for name, value in self.headers_for(query))


# Printable ASCII but space: kept as the visitor sent it (already percent-encoded or not).
_QUERY_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))

MISSING = object()  # "not cached", as opposed to a cached None ("no such code")


class LinkCache:
    def __init__(
        self,
        max_size: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_size = max_size
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedLink | None]] = OrderedDict()
        self._evict_listeners: list[Callable[[str], None]] = []

    def get(self, code: str) -> CachedLink | object | None:
        """The cached link, None for a cached "no such code", or `MISSING`."""
        entry = self._entries.get(code)
        if entry is None:
            return MISSING
        expires, link = entry
        if expires < self._clock():
            del self._entries[code]
            return MISSING
        self._entries.move_to_end(code)
        return link

    def put(self, code: str, link: CachedLink | None) -> None:
        if self._max_size == 0 or self._ttl == 0:
            return
        ttl = self._ttl if link is not None else min(self._ttl, 5.0)
        self._entries[code] = (self._clock() + ttl, link)
        self._entries.move_to_end(code)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    def evict(self, code: str) -> None:
        self._entries.pop(code, None)
        for listener in self._evict_listeners:
            listener(code)

    def clear(self) -> None:
        """Forget every entry (a domain blocked or unblocked: every link is judged again as
        it is next loaded). A lookup still out is judged when it lands, after this."""
        self._entries.clear()

    def on_evict(self, listener: Callable[[str], None]) -> None:
        """Call `listener(code)` on every eviction, after the entry is gone."""
        self._evict_listeners.append(listener)

    def __len__(self) -> int:
        return len(self._entries)
