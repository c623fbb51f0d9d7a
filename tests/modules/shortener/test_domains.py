"""Blocked domains without a database: how a domain is written, and which hosts it covers;
and the orphan tally keeping its counts when the database is away."""

from __future__ import annotations

from typing import Any

import pytest

from app.modules.shortener.blocklist import (
    Blocklist,
    InvalidDomain,
    host_of,
    normalise_domain,
)
from app.modules.shortener.cache import CachedLink, LinkCache
from app.modules.shortener.orphans import OrphanTally


@pytest.mark.parametrize(
    ("given", "domain"),
    [
        ("example.com", "example.com"),
        ("  EXAMPLE.com.  ", "example.com"),
        ("https://Sub.Example.com:8443/path?q#f", "sub.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        (
            "\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0e\uff43\uff4f\uff4d",
            "example.com",
        ),  # fullwidth
        ("http://[2001:DB8::1]/", "[2001:db8::1]"),
        ("0x7f.1", "127.0.0.1"),
    ],
)
def test_a_domain_is_written_as_targets_write_their_hosts(given: str, domain: str) -> None:
    assert normalise_domain(given) == domain


@pytest.mark.parametrize(
    "given", ["", "https://", "/path", "a b.com", "user@host.com", "a..b", "ex%41mple.com", "a\\b"]
)
def test_what_is_no_domain_is_refused(given: str) -> None:
    with pytest.raises(InvalidDomain):
        normalise_domain(given)


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://example.com/", "example.com"),
        ("https://example.com", "example.com"),
        ("http://example.com:8080/p", "example.com"),
        ("https://example.com.?q", "example.com"),
        ("https://[2001:db8::1]:443/x", "[2001:db8::1]"),
        ("https://a.b.example#frag", "a.b.example"),
    ],
)
def test_the_host_of_a_stored_target(target: str, host: str) -> None:
    assert host_of(target) == host


def blocklist(*domains: str) -> tuple[Blocklist, LinkCache]:
    cache = LinkCache(100, 30)
    listed = Blocklist(engine=None, cache=cache, reload_seconds=0)  # type: ignore[arg-type]
    listed._replace(frozenset(domains))
    return listed, cache


@pytest.mark.parametrize(
    ("target", "blocked"),
    [
        ("https://evil.example/", "evil.example"),
        ("https://a.b.evil.example/x", "evil.example"),
        ("https://notevil.example/", None),
        ("https://evil.example.com/", None),
        ("https://example/", None),
    ],
)
def test_a_domain_covers_itself_and_its_subdomains_only(target: str, blocked: str | None) -> None:
    listed, _ = blocklist("evil.example")

    assert listed.blocked_domain(target) == blocked


async def test_an_event_changes_the_set_and_empties_the_cache() -> None:
    from app.contracts.shortener import DomainBlocked, DomainUnblocked

    listed, cache = blocklist()
    cache.put("abc", None)
    heard = listed.heard()

    await heard([DomainBlocked(domain="evil.example")])

    assert len(cache) == 0
    assert listed.refusal("https://www.evil.example/") is not None
    cache.put("abc", None)
    await heard([DomainBlocked(domain="evil.example")])  # no change: the cache stays
    assert len(cache) == 1
    await heard([DomainUnblocked(domain="evil.example")])
    assert listed.refusal("https://www.evil.example/") is None
    assert len(cache) == 0


def test_a_cached_link_that_is_refused_is_gone() -> None:
    link = CachedLink(
        id=None,  # type: ignore[arg-type]
        code="abc",
        target_url="https://evil.example/",
        expires_at=None,
        deleted=False,
        refused="Links to evil.example are blocked on this instance.",
    )

    assert link.is_gone()


class _AwayEngine:
    def begin(self) -> Any:
        raise ConnectionError("the database is away")


async def test_a_failed_flush_keeps_the_counts_for_the_next() -> None:
    tally = OrphanTally(_AwayEngine())  # type: ignore[arg-type]
    for _ in range(3):
        tally.hit("missing")

    with pytest.raises(ConnectionError):
        await tally.flush()

    assert tally.pending == 3
    tally.hit("missing")
    assert tally.pending == 4


@pytest.mark.parametrize(
    ("target", "blocked"),
    [
        ("http://8.8.8.8/", "8.8.8.8"),
        ("http://[::ffff:808:808]/", "8.8.8.8"),  # IPv4-mapped
        ("http://[64:ff9b::808:808]/", "8.8.8.8"),  # NAT64
        ("http://[2002:808:808::]/", "8.8.8.8"),  # 6to4
        ("http://[2001:db8::1]/", "[2001:db8::1]"),
        ("http://[2001:db8::2]/", None),
        ("http://8.8.4.4/", None),
    ],
)
def test_an_address_is_blocked_whatever_ipv6_form_carries_it(
    target: str, blocked: str | None
) -> None:
    """Red-team finding F5: the IPv6 forms of a blocked IPv4 address got through."""
    listed, _ = blocklist("8.8.8.8", "[2001:db8::1]")

    assert listed.blocked_domain(target) == blocked
    assert normalise_domain("http://[::ffff:8.8.8.8]/") == "8.8.8.8"
