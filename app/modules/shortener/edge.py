"""Privacy at the edge: what a click event may carry, decided before it leaves the module.

The raw IP is used here, for the place lookup and the visitor hash, and then dropped: the
event carries its /24 (IPv4) or /48 (IPv6) network, the country and city, and a keyed hash
of IP and user agent under the day's key, which no database holds (visitors.py).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from geoip2fast import GeoIP2Fast
from starlette.types import Scope

from app.bus.envelope import Envelope
from app.contracts.shortener import LinkClicked
from app.kernel.http import client_address
from app.modules.shortener.bots import bot_patterns
from app.modules.shortener.settings import IPNetwork
from app.modules.shortener.visitors import VisitorKeys, visitor_hash

log = logging.getLogger(__name__)

_FORWARDED = b"x-forwarded-for"
_MAX_HEADER = 512  # user agents and referers beyond this are truncated


@lru_cache(maxsize=65_536)
def anonymize(ip: str | None) -> str | None:
    """The /24 network of an IPv4 address, the /48 of an IPv6 one (cached: parsing
    addresses is the costliest step of a click).

    An IPv6 address that carries an IPv4 one where a /48 would keep it whole (6to4,
    `2002:AABB:CCDD::/48`) or show it (`::ffff:a.b.c.d`) is reduced as that IPv4 address.
    """
    if ip is None:
        return None
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class Geo:
    """Country from geoip2fast's bundled data; city from an operator's .mmdb, if any."""

    def __init__(self, city_db: Path | None) -> None:
        # The IPv6 data file covers IPv4 too.
        self._countries = GeoIP2Fast(verbose=False, geoip2fast_data_file="geoip2fast-ipv6.dat.gz")
        self._cities: Any = None
        if city_db is not None:
            import maxminddb

            self._cities = maxminddb.open_database(str(city_db))
        # Addresses repeat (a visitor clicks again, many share a NAT or a proxy): a lookup
        # is several µs of Python on the event loop, a cached answer a dict probe.
        self.locate = lru_cache(maxsize=65_536)(self._lookup)

    def _lookup(self, ip: str | None) -> tuple[str | None, str | None]:
        """The country and city of `ip`."""
        if ip is None:
            return None, None
        try:
            found = self._countries.lookup(ip)
        except Exception:  # noqa: BLE001 - a lookup must never fail a redirect
            return None, None
        code = found.country_code or ""
        # geoip2fast answers "--" for private and unknown addresses.
        country = code if len(code) == 2 and code.isalpha() else None
        return country, self._city(ip)

    def _city(self, ip: str) -> str | None:
        if self._cities is None:
            return None
        try:
            record = self._cities.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        name = record.get("city", {}).get("names", {}).get("en")
        return str(name) if name else None


@lru_cache(maxsize=20_000)
def bot_reason(user_agent: str) -> str | None:
    """Why this user agent is a bot or crawler, or None for a person's browser.

    crawlerdetect's lists on RE2 (bots.py): microseconds whatever the header, because it
    runs on the event loop for every redirect (the cache only helps repeated agents)."""
    if not user_agent.strip():
        return "no user agent"
    matched = bot_patterns().reason(user_agent)
    return None if matched is None else f"crawler: {matched}"


class Edge:
    def __init__(self, geo: Geo, keys: VisitorKeys, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._ids = ClickIds()
        self._geo = geo
        self._keys = keys
        self._trusted = trusted_proxies
        bot_patterns()  # compiled now, not on the first redirect

    @staticmethod
    def is_bot(scope: Scope) -> bool:
        """What `click` will say of the request's user agent."""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value.replace(b"\x00", b"").decode("latin-1")[:_MAX_HEADER]
                return bot_reason(agent) is not None
        return True  # no user agent: "no user agent" is a bot's reason

    def country(self, scope: Scope) -> str | None:
        """The visitor's country, as `click` finds it (for redirect rules)."""
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        client = scope.get("client")
        ip = client_address(client[0] if client else None, forwarded, self._trusted)
        return self._geo.locate(ip)[0]

    def click(self, scope: Scope, code: str) -> Envelope:
        """The click of a redirect, from its ASGI scope (no Request object is made), as the
        envelope of its `link_clicked` event: its payload encoded here, once, with no model
        in between (tests/modules/shortener/test_edge.py holds it to the contract). The
        outbox stores the envelope's bytes; in-process, the relay hands the envelope on."""
        agent: bytes | None = None
        referrer: bytes | None = None
        forwarded: list[str] = []
        for name, value in scope["headers"]:  # the first of a repeated header counts
            if name == b"user-agent":
                agent = value if agent is None else agent
            elif name == b"referer":
                referrer = value if referrer is None else referrer
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
        # NUL cannot be stored in jsonb, and one would fail its whole group's write again
        # and again. uvicorn's parser refuses it; another server might not.
        user_agent = (agent or b"").replace(b"\x00", b"").decode("latin-1")[:_MAX_HEADER]
        referer = (referrer or b"").replace(b"\x00", b"").decode("latin-1")[:_MAX_HEADER]
        client = scope.get("client")
        ip = client_address(client[0] if client else None, forwarded, self._trusted)
        now = datetime.now(UTC)
        key = self._keys.for_day(now.date())
        country, city = self._geo.locate(ip)
        reason = bot_reason(user_agent)
        click_id = self._ids.next()  # the click's id is its event's id: one event per click
        payload = {
            "event_id": click_id,
            "occurred_at": now,
            "code": code,
            "click_id": click_id,
            "ip_anonymized": anonymize(ip),
            "country": country,
            "city": city,
            "user_agent": user_agent or None,
            "referer": referer or None,
            "visitor_hash": visitor_hash(key, ip, user_agent),
            "is_bot": reason is not None,
            "bot_reason": reason,
            "metadata": {},
        }
        return Envelope(
            event_id=click_id,
            type=LinkClicked.type,
            occurred_at=now,
            key=code,
            payload=orjson.dumps(payload).decode(),  # a tenth of the json module's time
        )


class ClickIds:
    """Unique ids for clicks, made without a system call: a random prefix drawn once per
    process (74 random bits, as a version 4 UUID has 122), then a counter in the last 48
    bits. Ids of one process are sequential, which nothing relies on or exposes as a
    secret; uuid4() per click cost more than the rest of the id's making."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().int >> 48 << 48
        self._counter = itertools.count()

    def next(self) -> uuid.UUID:
        return uuid.UUID(int=self._prefix | next(self._counter))
