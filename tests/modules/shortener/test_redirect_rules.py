"""Redirect rules: the first rule whose conditions all hold for a visit picks its target,
else the link's url; each target checked like url; bad rules a 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.modules.shortener.rules import Rule, pick
from tests.conftest import AppFactory, relay_of
from tests.modules.shortener.helpers import (
    CHROME,
    SAFARI,
    ShortenerDb,
    click_count,
    stop_background_relays,
)
from tests.modules.shortener.test_express import answered, head_of
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem

FALLBACK = "https://example.com/"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
WINDOWS_PHONE = "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1) Mobile Edge/40.15254.603"
FIREFOX_OS = "Mozilla/5.0 (Mobile; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5"


def rule(url: str, **when: Any) -> dict[str, Any]:
    return {"when": when, "url": url}


async def target(client: httpx.AsyncClient, path: str, **headers: str) -> str:
    response = await client.get(path, headers={"User-Agent": CHROME, **headers})
    assert response.status_code == 302, response.text
    location: str = response.headers["location"]
    return location


async def ruled(client: httpx.AsyncClient, account: Account, *rules: dict[str, Any]) -> str:
    link = await shorten(client, account, FALLBACK, redirect_rules=list(rules))
    code: str = link["code"]
    return code


async def test_device_rules_pick_ios_android_mobile_or_desktop(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    code = await ruled(
        client,
        ana,
        rule("https://apps.apple.com/app/1", device="ios"),
        rule("https://play.google.com/store/apps/1", device="android"),
        rule("https://m.example.com/", device="mobile"),
    )
    desktop_code = await ruled(client, ana, rule("https://desk.example.com/", device="desktop"))

    assert await target(client, f"/{code}", **{"User-Agent": SAFARI}) == (
        "https://apps.apple.com/app/1"
    )
    assert await target(client, f"/{code}", **{"User-Agent": ANDROID}) == (
        "https://play.google.com/store/apps/1"
    )
    assert await target(client, f"/{code}", **{"User-Agent": FIREFOX_OS}) == (
        "https://m.example.com/"
    )
    assert await target(client, f"/{code}") == FALLBACK  # a desktop browser
    assert await target(client, f"/{desktop_code}") == "https://desk.example.com/"
    assert await target(client, f"/{desktop_code}", **{"User-Agent": SAFARI}) == FALLBACK


async def test_a_language_rule_matches_the_primary_subtag_of_an_accepted_language(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    code = await ruled(
        client,
        ana,
        rule("https://example.com/pt-br", language="pt-BR"),
        rule("https://example.com/pt", language="pt"),
    )

    def visit(accept: str) -> Any:
        return target(client, f"/{code}", **{"Accept-Language": accept})

    assert await visit("pt-BR,pt;q=0.9,en;q=0.8") == "https://example.com/pt-br"
    assert await visit("pt-PT") == "https://example.com/pt"
    assert await visit("PT") == "https://example.com/pt"
    assert await visit("en-US, pt;q=0.5") == "https://example.com/pt"  # accepted, if less
    assert await visit("en-US,en;q=0.9") == FALLBACK
    assert await visit("en, pt;q=0") == FALLBACK  # q=0: not acceptable
    assert await visit("ptx, *") == FALLBACK
    assert await target(client, f"/{code}") == FALLBACK  # no Accept-Language


async def test_a_country_rule_uses_the_clicks_own_country_lookup(
    app_client: AppFactory,
) -> None:
    async with app_client(client_ip="8.8.8.8") as in_us:
        ana = await new_account(in_us)
        code = await ruled(
            in_us,
            ana,
            rule("https://example.com/br", country="br"),
            rule("https://example.com/us", country="US"),
        )
        assert await target(in_us, f"/{code}") == "https://example.com/us"
    async with app_client(client_ip="200.147.67.142") as in_brazil:
        assert await target(in_brazil, f"/{code}") == "https://example.com/br"
    async with app_client() as unknown:  # a documentation address: no country
        assert await target(unknown, f"/{code}") == FALLBACK


async def test_a_query_rule_needs_every_parameter_with_exactly_its_value(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    code = await ruled(
        client, ana, rule("https://example.com/qr", query={"utm_source": "qr", "v": ""})
    )

    assert await target(client, f"/{code}?utm_source=qr&v=&x=1") == "https://example.com/qr"
    assert await target(client, f"/{code}?v&utm_source=qr") == "https://example.com/qr"
    assert await target(client, f"/{code}?utm_source=QR&v=") == FALLBACK
    assert await target(client, f"/{code}?utm_source=qr") == FALLBACK
    assert await target(client, f"/{code}") == FALLBACK


async def test_the_first_matching_rule_wins_and_all_conditions_of_a_rule_must_hold(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    code = await ruled(
        client,
        ana,
        rule("https://example.com/ios-pt", device="ios", language="pt"),
        rule("https://example.com/ios", device="ios"),
        rule("https://example.com/never", device="ios"),
    )
    assert await target(client, f"/{code}", **{"User-Agent": SAFARI}) == "https://example.com/ios"
    portuguese_iphone = {"User-Agent": SAFARI, "Accept-Language": "pt-BR"}
    assert await target(client, f"/{code}", **portuguese_iphone) == "https://example.com/ios-pt"
    assert await target(client, f"/{code}", **{"Accept-Language": "pt"}) == FALLBACK


async def test_a_rule_redirect_is_one_click_and_forwards_the_query_when_asked(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    link = await shorten(
        client,
        ana,
        FALLBACK,
        forward_query=True,
        redirect_rules=[rule("https://example.com/qr?a=1", query={"s": "qr"})],
    )
    code = link["code"]
    assert await target(client, f"/{code}?s=qr") == "https://example.com/qr?a=1&s=qr"
    assert await target(client, f"/{code}?s=web") == "https://example.com/?s=web"
    assert await click_count(client, ana, code) == 2


async def test_rules_are_shown_normalised_patched_and_cleared_by_null_or_empty(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    link = await shorten(
        client,
        ana,
        FALLBACK,
        code="ruled",
        redirect_rules=[rule("HTTPS://Example.COM/ios", device="ios", country="pt")],
    )
    assert link["redirect_rules"] == [
        {
            "when": {"device": "ios", "language": None, "country": "PT", "query": None},
            "url": "https://example.com/ios",
        }
    ]
    assert (await client.get("/api/links/ruled", headers=ana.headers)).json() == link

    for cleared in (None, []):
        changed = await client.patch(
            "/api/links/ruled",
            json={"redirect_rules": [rule("https://example.com/a", device="android")]},
            headers=ana.headers,
        )
        assert changed.json()["redirect_rules"][0]["url"] == "https://example.com/a"
        assert await target(client, "/ruled", **{"User-Agent": ANDROID}) == (
            "https://example.com/a"
        )
        emptied = await client.patch(
            "/api/links/ruled", json={"redirect_rules": cleared}, headers=ana.headers
        )
        assert emptied.json()["redirect_rules"] == []
        assert await target(client, "/ruled", **{"User-Agent": ANDROID}) == FALLBACK

    updated = await ShortenerDb(database_urls).outbox("shortener.link_updated.v1")
    assert updated[0]["payload"]["redirect_rules"] == [
        {"when": {"device": "android"}, "url": "https://example.com/a"}
    ]
    assert updated[-1]["payload"]["redirect_rules"] == []


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([rule("javascript:alert(1)", device="ios")], "redirect_rules.0.url"),
        (
            [rule(FALLBACK, device="ios"), rule("http://127.0.0.1/", device="ios")],
            "redirect_rules.1.url",
        ),
        ([rule("http://169.254.169.254/latest", country="US")], "redirect_rules.0.url"),
        ([rule("https://user:pw@example.com/", country="US")], "redirect_rules.0.url"),
        ([rule("http://encurta.test/loop", country="US")], "redirect_rules.0.url"),
        ([rule(FALLBACK, device="tablet")], "redirect_rules.0.when.device"),
        ([rule(FALLBACK)], "redirect_rules.0.when"),
        ([rule(FALLBACK, planet="mars")], "redirect_rules.0.when.planet"),
        ([rule(FALLBACK, country="USA")], "redirect_rules.0.when.country"),
        ([rule(FALLBACK, country="--")], "redirect_rules.0.when.country"),
        ([rule(FALLBACK, language="pt_BR")], "redirect_rules.0.when.language"),
        ([rule(FALLBACK, query={})], "redirect_rules.0.when.query"),
        ([rule(FALLBACK, query={"a": 1})], "redirect_rules.0.when.query.a"),
        ([{"when": {"device": "ios"}}], "redirect_rules.0.url"),
        ([{"when": {"device": "ios"}, "url": FALLBACK, "x": 1}], "redirect_rules.0.x"),
        ([rule(FALLBACK, device="ios")] * 21, "redirect_rules"),
        ({"device": "ios"}, "redirect_rules"),
        (["https://example.com/"], "redirect_rules.0"),
    ],
)
async def test_a_bad_rule_is_a_422_naming_its_field_on_create_and_change(
    client: httpx.AsyncClient, rules: Any, field: str
) -> None:
    ana = await new_account(client)
    created = await client.post(
        "/api/links", json={"url": FALLBACK, "redirect_rules": rules}, headers=ana.headers
    )
    assert_problem(created, 422, fields=[field])
    await shorten(client, ana, FALLBACK, code="plain")
    changed = await client.patch(
        "/api/links/plain", json={"redirect_rules": rules}, headers=ana.headers
    )
    assert_problem(changed, 422, fields=[field])
    assert (await client.get("/api/links/plain", headers=ana.headers)).json()[
        "redirect_rules"
    ] == []


async def test_every_hostile_rule_target_is_named_at_once(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    rules = [
        rule("data:text/html,<script>alert(1)</script>", device="ios"),
        rule("https://example.com/fine", device="android"),
        rule("http://[::1]/admin", device="desktop"),
    ]
    created = await client.post(
        "/api/links", json={"url": FALLBACK, "redirect_rules": rules}, headers=ana.headers
    )
    assert_problem(created, 422, fields=["redirect_rules.0.url", "redirect_rules.2.url"])


async def test_rules_set_on_one_replica_reach_the_other_by_their_event(
    app_client: AppFactory,
) -> None:
    async with app_client() as one, app_client() as two:
        ana = await new_account(one)
        await stop_background_relays(one)
        await stop_background_relays(two)
        await shorten(one, ana, FALLBACK, code="shared")
        assert await target(two, "/shared", **{"User-Agent": SAFARI}) == FALLBACK  # cached
        changed = await one.patch(
            "/api/links/shared",
            json={"redirect_rules": [rule("https://example.com/ios", device="ios")]},
            headers=ana.headers,
        )
        assert changed.status_code == 200

        await relay_of(two, "shortener").drain()  # the link_updated event, as two hears it

        assert await target(two, "/shared", **{"User-Agent": SAFARI}) == "https://example.com/ios"


async def test_the_express_lane_answers_a_rule_link_with_its_rule_target(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    code = await ruled(client, ana, rule("https://desk.example.com/", device="desktop"))
    assert await target(client, f"/{code}") == "https://desk.example.com/"  # cached now

    response = await answered(client, f"/{code}")  # as the server's protocol asks, with Chrome

    assert head_of(response)[1]["location"] == "https://desk.example.com/"
    assert await click_count(client, ana, code) == 2


async def test_a_blocked_domain_refuses_rule_targets_and_links_that_hide_one_in_a_rule(
    client: httpx.AsyncClient,
) -> None:
    admin = await new_account(client, "admin@example.com")  # the first account: the admin
    user = await new_account(client, "user@example.com")
    code = await ruled(client, user, rule("https://evil.example/app", device="ios"))
    assert await target(client, f"/{code}") == FALLBACK  # cached, rules and all

    blocked = await client.post(
        "/api/admin/blocked-domains", json={"domain": "evil.example"}, headers=admin.headers
    )
    assert blocked.status_code == 201, blocked.text

    gone = await client.get(f"/{code}")  # whatever the device: its rule could lead there
    assert "evil.example" in assert_problem(gone, 410)["detail"]
    refused = await client.post(
        "/api/links",
        json={"url": FALLBACK, "redirect_rules": [rule("https://a.evil.example/", country="PT")]},
        headers=user.headers,
    )
    assert_problem(refused, 422, fields=["redirect_rules.0.url"])


def test_matching_reads_only_what_the_rules_ask_for() -> None:
    asked: list[str] = []

    def country() -> str | None:
        asked.append("country")
        return "PT"

    scope: dict[str, Any] = {"headers": [], "query_string": b"a=1"}
    rules = (Rule(url="q", query=(("a", "1"),)), Rule(url="c", country="PT"))
    assert pick(rules, scope, country) == "q"
    assert asked == []  # the first rule matched: no country looked up
    assert pick((Rule(url="c", country="PT"), Rule(url="d", country="BR")), scope, country) == "c"
    assert pick((Rule(url="d", country="BR"), Rule(url="e", country="ES")), scope, country) is None
    assert asked == ["country", "country"]  # once per visit, however many rules ask
