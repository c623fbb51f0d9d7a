"""Blocked domains: an admin blocks a domain, with its subdomains, on the whole instance.

Links to a blocked domain are refused (422 naming `url`), and existing ones answer 410. The
redirect pays nothing for it: every replica holds the blocked domains as a set, and a link
is judged once, as it is loaded into the cache (`refusal`, a few set probes on its host).
A block or unblock commits with its event (`domain_blocked`/`domain_unblocked`), which
every replica hears: it updates its set and empties its link cache, so each link is judged
again at its next visit. The set is also read again from the database every
`reload_seconds`, which bounds how long a replica that missed an event (the broker down)
can go on redirecting to a blocked domain, as the cache TTL bounds other changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.outbox import write_outbox
from app.contracts.shortener import DomainBlocked, DomainUnblocked
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.tables import blocked_domains
from app.modules.shortener.targets import UnsafeTarget, _parse_host, _split_port, embedded_ipv4

log = logging.getLogger(__name__)

MAX_DOMAIN = 253
_RETRY_SECONDS = 1.0


class InvalidDomain(ValueError):
    """The message is shown as the `domain` field's error."""


def normalise_domain(raw: str) -> str:
    """A domain as links' targets spell their hosts (lowercase, IDNA, no trailing dot), from
    a bare name or a URL: `https://Bücher.example/x` is `xn--bcher-kva.example`."""
    text = raw.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    for end in "/?#":
        text = text.split(end, 1)[0]
    if not text or len(text) > MAX_DOMAIN + 8:
        raise InvalidDomain("Give a domain name, such as example.com.")
    if "@" in text or "\\" in text or "\x00" in text:
        raise InvalidDomain("A domain has no user name, password or backslash.")
    try:
        host = _parse_host(_split_port(text)[0]).text.rstrip(".")
    except UnsafeTarget:
        raise InvalidDomain("This is not a valid domain name.") from None
    if not host:
        raise InvalidDomain("Give a domain name, such as example.com.")
    if host.startswith("["):  # an IPv6 form of an IPv4 address blocks that address
        embedded = embedded_ipv4(ipaddress.IPv6Address(host[1:-1]))
        if embedded is not None:
            return str(embedded)
    return host


def host_of(target_url: str) -> str:
    """The host of a target as check_target writes it (`https://h:8443/p` is `h`)."""
    rest = target_url.partition("://")[2]
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if 0 <= found < end:
            end = found
    authority = rest[:end].rpartition("@")[2]
    if authority.startswith("["):
        return authority[: authority.find("]") + 1]
    return authority.partition(":")[0].rstrip(".").lower()


@dataclass(frozen=True)
class BlockedDomain:
    domain: str
    created_at: datetime
    created_by: UUID | None = None  # the admin who blocked it, where listed


class Blocklist:
    def __init__(self, engine: AsyncEngine, cache: LinkCache, reload_seconds: float) -> None:
        self._engine = engine
        self._cache = cache
        self._reload = reload_seconds
        self._domains: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._loaded = False

    # The redirect's side: judged as a link is loaded into the cache.

    def blocked_domain(self, target_url: str) -> str | None:
        """The blocked domain that `target_url` is on (itself or a parent), or None."""
        if not self._domains:
            return None
        host = host_of(target_url)
        if host.startswith("["):  # an IPv6 address, blocked as such or as the IPv4 it carries
            with contextlib.suppress(ValueError):
                embedded = embedded_ipv4(ipaddress.IPv6Address(host[1:-1]))
                if embedded is not None and str(embedded) in self._domains:
                    return str(embedded)
            return host if host in self._domains else None
        while True:
            if host in self._domains:
                return host
            dot = host.find(".")
            if dot < 0:
                return None
            host = host[dot + 1 :]

    def refusal(self, target_url: str) -> str | None:
        """Why a link to `target_url` answers 410, or None."""
        domain = self.blocked_domain(target_url)
        return None if domain is None else f"Links to {domain} are blocked on this instance."

    def _replace(self, domains: frozenset[str]) -> None:
        if domains != self._domains:
            # In one step, with no await in between: a lookup that lands after it judges
            # with the new set; one that landed before is in the cache, and goes with it.
            self._domains = domains
            self._cache.clear()

    # Keeping the set: at start, on every replica's events, and every `reload_seconds`.

    async def load(self) -> None:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(blocked_domains.c.domain))).scalars()
            self._replace(frozenset(rows))
        self._loaded = True

    async def start(self) -> None:
        """Load the set; a database that is not up yet does not stop the start (nor could
        a link be loaded meanwhile): the load is tried again every second until it works."""
        try:
            await self.load()
        except Exception:
            log.exception("blocked domains: the first load failed; retried every second")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if self._loaded and self._reload <= 0:
                return
            await asyncio.sleep(self._reload if self._loaded else _RETRY_SECONDS)
            try:
                await self.load()
            except Exception:
                log.exception("blocked domains: reloading failed; retried later")

    def heard(self) -> Callable[[Sequence[DomainBlocked | DomainUnblocked]], Awaitable[None]]:
        """The handler of both events, in every replica."""

        async def handle(events: Sequence[DomainBlocked | DomainUnblocked]) -> None:
            domains = set(self._domains)
            for event in events:
                if isinstance(event, DomainBlocked):
                    domains.add(event.domain)
                else:
                    domains.discard(event.domain)
            self._replace(frozenset(domains))

        return handle

    # The admin's side.

    async def list(self) -> list[BlockedDomain]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        blocked_domains.c.domain,
                        blocked_domains.c.created_at,
                        blocked_domains.c.created_by,
                    ).order_by(blocked_domains.c.domain)
                )
            ).all()
        return [BlockedDomain(row.domain, row.created_at, row.created_by) for row in rows]

    async def block(self, domain: str, by: UUID) -> tuple[BlockedDomain, bool]:
        """Block `domain` (normalised); whether it was new. Its event commits with it."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    insert(blocked_domains)
                    .values(domain=domain, created_by=by)
                    .on_conflict_do_nothing(index_elements=["domain"])
                    .returning(blocked_domains.c.created_at)
                )
            ).one_or_none()
            if row is None:
                created_at = (
                    await conn.execute(
                        select(blocked_domains.c.created_at).where(
                            blocked_domains.c.domain == domain
                        )
                    )
                ).scalar_one()
                return BlockedDomain(domain, created_at), False
            await write_outbox(conn, [DomainBlocked(domain=domain)])
        self._replace(self._domains | {domain})  # this replica at once; the others by event
        return BlockedDomain(domain, row.created_at), True

    async def unblock(self, domain: str) -> bool:
        """Whether `domain` was blocked."""
        async with self._engine.begin() as conn:
            gone = (
                await conn.execute(
                    delete(blocked_domains)
                    .where(blocked_domains.c.domain == domain)
                    .returning(blocked_domains.c.domain)
                )
            ).one_or_none()
            if gone is None:
                return False
            await write_outbox(conn, [DomainUnblocked(domain=domain)])
        self._replace(self._domains - {domain})
        return True
