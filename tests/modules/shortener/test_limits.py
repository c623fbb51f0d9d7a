"""The shortener's rate limits over HTTP: links created per user and per client (every way a
link is made), unknown codes per client (scanning), in memory and shared through PostgreSQL
by replicas. Time moves by replacing the limiter's clock, not by waiting a minute."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.kernel import limits
from app.kernel.limits import LimitSettings
from app.modules.shortener.settings import ShortenerLimits
from tests.conftest import AppFactory
from tests.modules.shortener.test_express import answered, head_of
from tests.modules.shortener.test_yourls import key_of
from tests.support.accounts import PASSWORD, new_account

pytestmark = pytest.mark.integration

PROXY = "203.0.113.7"  # the test client's address, trusted as a proxy below
ORIGIN = {"Origin": "http://encurta.test"}


class Clock:
    def __init__(self) -> None:
        self.at = 1_000_060.0  # 40 s into a minute's window: 20 s left

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits, "now", clock)
    return clock


def limited(settings: Settings, store: str = "memory", **numbers: int) -> dict[str, Any]:
    """Settings changes for `app_client`: these limits (the rest off), X-Forwarded-For
    believed from the test client so each test can be many clients."""
    shortener = settings.shortener.model_copy(
        update={
            "limits": ShortenerLimits(
                **{
                    "links_per_user": 0,
                    "links_per_client": 0,
                    "unknown_codes_per_client": 0,
                    **numbers,
                }
            ),
            "trusted_proxies": [ipaddress.ip_network(PROXY)],
        }
    )
    return {"shortener": shortener, "limits": LimitSettings(store=store)}  # type: ignore[arg-type]


def from_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def assert_limited(response: httpx.Response, name: str, limit: int, reset: int = 20) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(reset)
    assert response.headers["RateLimit"] == f"limit={limit}, remaining=0, reset={reset}"
    assert response.headers["RateLimit-Policy"] == f"{limit};w=60"
    if response.headers["content-type"] == "application/problem+json":
        assert name in response.json()["detail"]


async def make(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/api/links", json={"url": "https://example.com/"}, headers=headers)


async def test_links_per_user_429_with_headers_then_allowed_after_the_window(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    async with app_client(**limited(settings, links_per_user=3)) as client:
        account = await new_account(client)
        made = [await make(client, account.headers) for _ in range(3)]
        assert [r.status_code for r in made] == [201, 201, 201]
        assert made[0].headers["RateLimit"] == "limit=3, remaining=2, reset=20"
        assert made[2].headers["RateLimit-Policy"] == "3;w=60"

        refused = await make(client, account.headers)
        assert_limited(refused, "links-per-user", 3)
        assert refused.json()["type"].endswith("/rate-limited")
        # Another user, from the same address, is not this user.
        other = await new_account(client, "bo@example.com")
        assert (await make(client, other.headers)).status_code == 201

        clock.at += 20  # the next window
        assert (await make(client, account.headers)).status_code == 201


async def test_links_per_client_counts_every_user_and_anonymous_callers(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = limited(settings, links_per_client=2)
    changes["shortener"] = changes["shortener"].model_copy(update={"allow_anonymous": True})
    async with app_client(**changes) as client:
        ana = await new_account(client)
        bo = await new_account(client, "bo@example.com")
        here = from_client("198.51.100.1")
        assert (await make(client, {**ana.headers, **here})).status_code == 201
        assert (await make(client, here)).status_code == 201  # anonymous
        assert_limited(await make(client, {**bo.headers, **here}), "links-per-client", 2)
        # Another address (an IPv6 one counts by its /64), unaffected.
        there = from_client("2001:db8:1:2::1")
        assert (await make(client, {**bo.headers, **there})).status_code == 201
        assert (await make(client, from_client("2001:db8:1:2::99"))).status_code == 201
        assert_limited(await make(client, from_client("2001:db8:1:2:ffff::5")), "per-client", 2)


async def test_every_way_of_creating_a_link_counts_and_is_refused(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    async with app_client(**limited(settings, links_per_user=4)) as client:
        key = await key_of(client, "ana@example.com", ["links:read", "links:write"])
        api = {"X-Api-Key": key}
        signed_in = await client.post(
            "/login", data={"email": "ana@example.com", "password": PASSWORD}, headers=ORIGIN
        )
        assert signed_in.status_code == 303, signed_in.text

        def yourls() -> Any:
            params = {"signature": key, "format": "json", "action": "shorturl"}
            return client.get("/yourls-api.php", params={**params, "url": "https://example.com/"})

        def shlink() -> Any:
            return client.post(
                "/rest/v3/short-urls", json={"longUrl": "https://example.com/"}, headers=api
            )

        def form() -> Any:
            return client.post("/links", data={"url": "https://example.com/"}, headers=ORIGIN)

        assert (await make(client, api)).status_code == 201
        assert (await yourls()).json()["status"] == "success"
        assert (await shlink()).status_code == 200
        assert (await form()).status_code == 303

        assert_limited(await make(client, api), "links-per-user", 4)
        assert_limited(await yourls(), "links-per-user", 4)
        refused = await shlink()
        assert_limited(refused, "links-per-user", 4)  # in Shlink's problem format
        page = await form()
        assert_limited(page, "links-per-user", 4)
        assert "links-per-user" in page.text  # said on the form itself


async def test_unknown_codes_per_client_refuse_the_scanner_every_code_until_reset(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    async with app_client(**limited(settings, unknown_codes_per_client=3)) as client:
        account = await new_account(client)
        known = (await make(client, account.headers)).json()["code"]
        scanner = from_client("198.51.100.9")
        misses = [await client.get(f"/nope{n}xyz", headers=scanner) for n in range(3)]
        assert [r.status_code for r in misses] == [404, 404, 404]
        # A path no code can be is answered without counting.
        assert (await client.get("/no.such.code", headers=scanner)).status_code == 404

        refused = await client.get("/nope9xyz", headers=scanner)
        assert_limited(refused, "unknown-codes-per-client", 3)
        # Refused even a code that exists: the 429 tells nothing of which codes do.
        assert_limited(await client.get(f"/{known}", headers=scanner), "unknown-codes", 3)
        # Another client still gets its redirect and its 404.
        assert (await client.get(f"/{known}", headers=from_client("198.51.100.10"))).is_redirect
        other = await client.get("/nope9xyz", headers=from_client("198.51.100.10"))
        assert other.status_code == 404
        assert (await client.get(f"/{known}")).status_code == 302

        clock.at += 20
        assert (await client.get(f"/{known}", headers=scanner)).status_code == 302
        assert (await client.get("/nope9xyz", headers=scanner)).status_code == 404


async def test_posting_to_unknown_codes_counts_as_scanning_too(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    """POST /{code} (a password link's form) answers 404 for an unknown code and 405 for a
    link without password: it must not be an unlimited way to tell which codes exist."""
    async with app_client(**limited(settings, unknown_codes_per_client=2)) as client:
        account = await new_account(client)
        known = (await make(client, account.headers)).json()["code"]
        scanner = {**from_client("198.51.100.11"), **ORIGIN}
        form = {"password": "guess"}
        misses = [await client.post(f"/post{n}xyz", data=form, headers=scanner) for n in range(2)]
        assert [r.status_code for r in misses] == [404, 404]
        refused = await client.post("/post9xyz", data=form, headers=scanner)
        assert_limited(refused, "unknown-codes-per-client", 2)
        assert_limited(await client.post(f"/{known}", data=form, headers=scanner), "unknown", 2)
        assert_limited(await client.get(f"/{known}", headers=scanner), "unknown-codes", 2)
        other = {**from_client("198.51.100.12"), **ORIGIN}
        assert (await client.post(f"/{known}", data=form, headers=other)).status_code == 405


async def test_the_express_lane_refuses_a_blocked_scanner_too(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    """The express lane (test_express's scope: client 198.51.100.23) counts misses and
    refuses, a cached link included, once the client is over."""
    async with app_client(**limited(settings, unknown_codes_per_client=2)) as client:
        account = await new_account(client)
        known = (await make(client, account.headers)).json()["code"]
        status, _ = head_of(await answered(client, f"/{known}"))  # cached from now on
        assert status.endswith("302 Found")
        for n in range(2):
            status, _ = head_of(await answered(client, f"/gone{n}abc"))
            assert status.endswith("404 Not Found")
        status, headers = head_of(await answered(client, "/gone9abc"))
        assert status.endswith("429 Too Many Requests")
        assert headers["retry-after"] == "20"
        assert headers["ratelimit"] == "limit=2, remaining=0, reset=20"
        status, _ = head_of(await answered(client, f"/{known}"))
        assert status.endswith("429 Too Many Requests")
        clock.at += 20
        status, _ = head_of(await answered(client, f"/{known}"))
        assert status.endswith("302 Found")


async def test_replicas_sharing_postgres_share_the_limits(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    changes = limited(settings, "postgres", links_per_user=3, unknown_codes_per_client=2)
    async with app_client(**changes) as first, app_client(**changes) as second:
        account = await new_account(first)
        assert (await make(first, account.headers)).status_code == 201
        assert (await make(second, account.headers)).status_code == 201
        assert (await make(first, account.headers)).status_code == 201
        assert_limited(await make(second, account.headers), "links-per-user", 3)
        assert_limited(await make(first, account.headers), "links-per-user", 3)

        scanner = from_client("198.51.100.9")
        assert (await first.get("/nope1xyz", headers=scanner)).status_code == 404
        assert (await second.get("/nope2xyz", headers=scanner)).status_code == 404
        assert_limited(await first.get("/nope3xyz", headers=scanner), "unknown-codes", 2)

        clock.at += 20
        assert (await second.get("/nope4xyz", headers=scanner)).status_code == 404


async def test_memory_replicas_each_count_alone(
    app_client: AppFactory, settings: Settings, clock: Clock
) -> None:
    """Why the `postgres` store exists: with memory stores two replicas allow twice."""
    changes = limited(settings, links_per_user=1)
    async with app_client(**changes) as first, app_client(**changes) as second:
        account = await new_account(first)
        assert (await make(first, account.headers)).status_code == 201
        assert (await make(second, account.headers)).status_code == 201
        assert (await make(first, account.headers)).status_code == 429
