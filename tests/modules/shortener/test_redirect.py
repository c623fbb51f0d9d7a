"""GET /{code}: the redirect, what answers when it cannot redirect, and the click it records
(counted before the response by default, and stripped of the raw IP at the edge)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.modules.shortener import ShortenerSettings
from tests.conftest import AppFactory
from tests.modules.shortener.helpers import (
    CHROME,
    CLICKED,
    FIREFOX,
    GOOGLEBOT,
    ShortenerDb,
    click_count,
    follow,
)
from tests.support.accounts import new_account, shorten
from tests.support.problems import assert_problem

TRUSTED = "203.0.113.0/24"  # the proxies in front of encurta, in these tests
PROXY = "203.0.113.7"  # app_client's default peer address: inside TRUSTED


def trusting(settings: Settings, networks: str = TRUSTED) -> ShortenerSettings:
    """The shortener settings with trusted proxies, parsed by the settings' own validator
    (a comma-separated string, as ENCURTA_SHORTENER__TRUSTED_PROXIES gives it)."""
    parsed = ShortenerSettings(trusted_proxies=networks).trusted_proxies
    return settings.shortener.model_copy(update={"trusted_proxies": parsed})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Clicks claimed and kept, like every other event, in the outbox where these tests
    read what a click carries: a click handed to the relay is deleted once sent
    (app/bus/handoff.py, tested in tests/bus/test_handoff.py)."""
    return settings.model_copy(update={"bus": settings.bus.model_copy(update={"handoff_limit": 0})})


async def clicks(database_urls: dict[str, str]) -> list[dict[str, Any]]:
    return [row["payload"] for row in await ShortenerDb(database_urls).outbox(CLICKED)]


def test_trusted_proxies_are_parsed_from_a_comma_separated_list() -> None:
    parsed = ShortenerSettings(trusted_proxies=" 203.0.113.0/24, 2001:db8::/32,10.1.2.3 ")

    assert parsed.trusted_proxies == [
        ipaddress.ip_network("203.0.113.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("10.1.2.3/32"),
    ]


async def test_a_link_redirects_with_302_to_its_target_and_is_not_cached_by_browsers(
    client: httpx.AsyncClient,
) -> None:
    account = await new_account(client)
    link = await shorten(client, account, "https://example.com/landing?utm=x#top")

    response = await client.get(f"/{link['code']}")

    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/landing?utm=x#top"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""


async def test_an_unknown_code_is_a_404_problem(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    response = await client.get("/NoSuchCode")

    body = assert_problem(response, 404)
    assert "NoSuchCode" in body["detail"]
    assert await clicks(database_urls) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/abc%00def"),
        ("HEAD", "/%00"),
        ("GET", "/api/links/%00"),
        ("DELETE", "/api/links/%00"),
        ("GET", "/" + "x" * 5000),
    ],
    ids=["redirect-nul", "head-nul", "show-nul", "delete-nul", "5000-chars"],
)
async def test_a_code_that_cannot_exist_is_a_404_not_a_server_error(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """PostgreSQL text cannot hold NUL: such a code must be answered before the query."""
    account = await new_account(client)

    response = await client.request(method, path, headers=account.headers)

    assert response.status_code == 404, response.text
    if method != "HEAD":
        assert_problem(response, 404)


async def test_a_deleted_link_is_a_410_problem_and_not_counted(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account)
    await follow(client, link["code"])
    assert (await client.delete(f"/api/links/{link['code']}", headers=account.headers)).is_success

    assert_problem(await client.get(f"/{link['code']}"), 410)
    assert (await client.head(f"/{link['code']}")).status_code == 410
    assert len(await clicks(database_urls)) == 1


async def test_a_link_past_its_expiry_is_a_410_even_while_cached(
    client: httpx.AsyncClient,
) -> None:
    """Waits (about 1.5 s) for a real expiry, with the default 30 s cache: the cached entry
    carries expires_at, and expiry is judged at each request."""
    account = await new_account(client)
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    link = await shorten(client, account, expires_at=expires.isoformat())
    assert (await client.get(f"/{link['code']}")).status_code == 302  # cached now

    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)

    body = assert_problem(await client.get(f"/{link['code']}"), 410)
    assert link["code"] in body["detail"]
    assert await click_count(client, account, link["code"]) == 1


async def test_an_expiry_moved_into_the_past_in_the_database_is_a_410(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    """The change is made behind the app's back (as another replica would), so the cache is
    turned off (cache_ttl_seconds=0) to see it at once; the TTL bounds it otherwise."""
    uncached = settings.shortener.model_copy(update={"cache_ttl_seconds": 0})
    async with app_client(shortener=uncached) as client:
        account = await new_account(client)
        expires = datetime.now(UTC) + timedelta(minutes=5)
        link = await shorten(client, account, expires_at=expires.isoformat())
        assert (await client.get(f"/{link['code']}")).status_code == 302

        await ShortenerDb(database_urls).execute(
            "UPDATE urls SET expires_at = now() - interval '1 second' WHERE code = $1",
            link["code"],
        )

        assert_problem(await client.get(f"/{link['code']}"), 410)
        assert (await client.head(f"/{link['code']}")).status_code == 410
        assert await click_count(client, account, link["code"]) == 1


async def test_a_head_request_redirects_but_is_not_a_click(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account, "https://example.com/head")

    response = await client.head(f"/{link['code']}")

    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/head"
    assert await click_count(client, account, link["code"]) == 0
    assert await clicks(database_urls) == []


@pytest.mark.parametrize("status", [301, 307, 308])
async def test_the_redirect_status_is_a_setting(
    app_client: AppFactory, settings: Settings, status: int
) -> None:
    changed = settings.shortener.model_copy(update={"redirect_status": status})
    async with app_client(shortener=changed) as client:
        account = await new_account(client)
        link = await shorten(client, account, "https://example.com/moved")
        response = await client.get(f"/{link['code']}")
        count = await click_count(client, account, link["code"])

    assert response.status_code == status
    assert response.headers["location"] == "https://example.com/moved"
    assert count == 1


async def test_every_redirect_is_counted_before_it_answers_and_carries_no_raw_ip(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    n = 25
    async with app_client(client_ip="8.8.8.8") as client:
        account = await new_account(client)
        link = await shorten(client, account, "https://example.com/counted")
        code = link["code"]

        responses = await asyncio.gather(
            *(
                client.get(
                    f"/{code}",
                    headers={"User-Agent": CHROME, "Referer": "https://news.example/item?id=1"},
                )
                for _ in range(n)
            )
        )
        # No waiting, no drain: each 302 above came after its click's group committed.
        count = await click_count(client, account, code)
        rows = await ShortenerDb(database_urls).outbox(CLICKED)

    assert [response.status_code for response in responses] == [302] * n
    assert count == n
    assert len(rows) == n
    assert len({row["payload"]["click_id"] for row in rows}) == n
    for row in rows:
        payload = row["payload"]
        assert row["key"] == code
        assert payload["code"] == code
        assert payload["ip_anonymized"] == "8.8.8.0"
        assert payload["country"] == "US"
        assert payload["user_agent"] == CHROME
        assert payload["referer"] == "https://news.example/item?id=1"
        assert re.fullmatch(r"[0-9a-f]{32}", payload["visitor_hash"])
        assert payload["is_bot"] is False
        assert payload["bot_reason"] is None
        assert "8.8.8.8" not in row["row_json"]  # in no column, not only the payload
    assert len({row["payload"]["visitor_hash"] for row in rows}) == 1


@pytest.mark.parametrize(
    "client_ip",
    ["2002:cb00:714d::1", "2002:cb00:714d:ffff::99", "::ffff:203.0.113.77"],
    ids=["6to4", "6to4-other-subnet", "ipv4-mapped"],
)
async def test_an_ipv6_address_carrying_an_ipv4_one_is_kept_to_its_24(
    app_client: AppFactory, database_urls: dict[str, str], client_ip: str
) -> None:
    """A 6to4 /48 is a whole IPv4 address (203.0.113.77 here): it is cut as that address."""
    async with app_client(client_ip=client_ip) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"])

    [row] = await ShortenerDb(database_urls).outbox(CLICKED)
    assert row["payload"]["ip_anonymized"] == "203.0.113.0"
    assert "cb00:714d" not in row["row_json"] and "203.0.113.77" not in row["row_json"]


async def test_an_ipv6_visitor_is_kept_to_a_48(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client(client_ip="2001:4860:4860::8888") as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"])

    [row] = await ShortenerDb(database_urls).outbox(CLICKED)
    assert row["payload"]["ip_anonymized"] == "2001:4860:4860::"
    assert row["payload"]["country"] == "US"
    assert "2001:4860:4860::8888" not in row["row_json"]


async def test_an_ipv4_visitor_seen_on_a_dual_stack_socket_is_treated_as_ipv4(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    """A server listening on `::` sees IPv4 peers as IPv4-mapped IPv6 (::ffff:a.b.c.d);
    they are IPv4 visitors: a /24, and a country."""
    async with app_client(client_ip="::ffff:8.8.8.8") as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"])

    [payload] = await clicks(database_urls)
    assert (payload["ip_anonymized"], payload["country"]) == ("8.8.8.0", "US")


async def test_an_address_with_no_country_has_no_country(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    """203.0.113.7 (the default test peer) is a documentation address: no country."""
    account = await new_account(client)
    link = await shorten(client, account)
    await follow(client, link["code"])

    [payload] = await clicks(database_urls)
    assert payload["ip_anonymized"] == "203.0.113.0"
    assert payload["country"] is None


async def test_bots_are_flagged_with_a_reason_and_still_counted(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account)

    for user_agent in (GOOGLEBOT, "", CHROME):
        await follow(client, link["code"], user_agent=user_agent)

    googlebot, empty, chrome = await clicks(database_urls)
    assert googlebot["is_bot"] is True
    assert "Googlebot" in googlebot["bot_reason"]
    assert googlebot["user_agent"] == GOOGLEBOT
    assert empty["is_bot"] is True
    assert empty["bot_reason"] == "no user agent"
    assert empty["user_agent"] is None
    assert (chrome["is_bot"], chrome["bot_reason"]) == (False, None)
    assert await click_count(client, account, link["code"]) == 3


async def test_x_forwarded_for_is_ignored_without_trusted_proxies(
    app_client: AppFactory, database_urls: dict[str, str]
) -> None:
    async with app_client(client_ip="8.8.8.8") as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"], **{"X-Forwarded-For": "1.1.1.1"})

    [payload] = await clicks(database_urls)
    assert payload["ip_anonymized"] == "8.8.8.0"


async def test_x_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    async with app_client(client_ip="8.8.8.8", shortener=trusting(settings)) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"], **{"X-Forwarded-For": "1.1.1.1"})

    [payload] = await clicks(database_urls)
    assert payload["ip_anonymized"] == "8.8.8.0"


@pytest.mark.parametrize(
    ("forwarded", "seen"),
    [
        ("8.8.8.8", "8.8.8.0"),
        # A client may send its own header: the proxy appends, the right-most untrusted
        # hop is the one the trusted proxy saw; whatever is left of it is the client's word.
        ("1.2.3.4, 8.8.8.8", "8.8.8.0"),
        ("1.2.3.4, 8.8.8.8, 203.0.113.9", "8.8.8.0"),
        ("2001:4860:4860::8888", "2001:4860:4860::"),
        ("203.0.113.9, 203.0.113.10", "203.0.113.0"),  # all trusted: the peer
        ("not-an-ip", "203.0.113.0"),  # garbage: the peer
        ("1.2.3.4, garbage", "203.0.113.0"),  # the right-most untrusted hop is garbage
    ],
    ids=[
        "single",
        "spoofed-left",
        "spoofed-left-and-second-proxy",
        "ipv6",
        "all-trusted",
        "garbage",
        "garbage-right-most",
    ],
)
async def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(
    app_client: AppFactory,
    settings: Settings,
    database_urls: dict[str, str],
    forwarded: str,
    seen: str,
) -> None:
    async with app_client(client_ip=PROXY, shortener=trusting(settings)) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        await follow(client, link["code"], **{"X-Forwarded-For": forwarded})

    [row] = await ShortenerDb(database_urls).outbox(CLICKED)
    assert row["payload"]["ip_anonymized"] == seen
    for hop in forwarded.split(","):
        if hop.strip() not in (seen, "not-an-ip", "garbage"):
            assert hop.strip() not in row["row_json"]


async def test_a_forwarded_for_split_over_two_header_lines_is_read_as_one_list(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    """HAProxy (`option forwardfor`) and others add their own X-Forwarded-For line instead of
    appending to the client's; HTTP defines several lines as one comma-separated list. The
    client's own line comes first: believing it would let any visitor choose its address."""
    async with app_client(client_ip=PROXY, shortener=trusting(settings)) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        response = await client.get(
            f"/{link['code']}",
            headers=[
                ("User-Agent", CHROME),
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-For", "8.8.8.8"),
            ],
        )

    assert response.status_code == 302
    [payload] = await clicks(database_urls)
    assert payload["ip_anonymized"] == "8.8.8.0"


async def test_the_visitor_hash_is_the_same_for_one_ip_and_agent_and_differs_otherwise(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    visits = [
        ("8.8.8.8", CHROME),
        ("8.8.8.8", CHROME),
        ("8.8.8.8", FIREFOX),
        ("8.8.4.4", CHROME),
        ("8.8.8.9", CHROME),
    ]
    async with app_client(client_ip=PROXY, shortener=trusting(settings)) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        for ip, user_agent in visits:
            await follow(client, link["code"], user_agent=user_agent, **{"X-Forwarded-For": ip})

    same, again, other_agent, other_ip, same_network = [
        payload["visitor_hash"] for payload in await clicks(database_urls)
    ]
    assert same == again
    assert len({same, other_agent, other_ip, same_network}) == 4
    # Two visitors of one /24 share the anonymised address, but not the visitor hash.
