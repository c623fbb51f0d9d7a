"""The shortener's admin pages over HTTP: every user's links, disabling and enabling one,
blocked domains, orphan visits; only for an admin, and only from this site's own pages.

The first account of an instance is its admin: it signs up with the form (the cookie);
the other user works through the API with a bearer token, which wins over the cookie.
"""

from __future__ import annotations

import httpx
import pytest

from app.kernel.session import SESSION_COOKIE
from tests.modules.shortener.test_orphans import tally_of
from tests.support.accounts import PASSWORD, Account, new_account, shorten

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://encurta.test"}
HTML = {"Accept": "text/html"}
ADMIN_EMAIL = "admin@example.com"


async def admin_and_user(client: httpx.AsyncClient) -> Account:
    """The admin signed in with the cookie; the user, returned, with a token."""
    signed_up = await client.post(
        "/signup", data={"email": ADMIN_EMAIL, "password": PASSWORD}, headers=ORIGIN
    )
    assert signed_up.status_code == 303, signed_up.text
    return await new_account(client, "bob@example.com")


async def test_an_admin_sees_every_users_links_with_owners_and_searches_them(
    client: httpx.AsyncClient,
) -> None:
    user = await admin_and_user(client)
    await shorten(client, user, "https://shop.example/sale", code="usersale")
    await client.post("/links", data={"url": "https://blog.example/b"}, headers=ORIGIN)
    page = await client.get("/admin/links", headers=HTML)
    assert page.status_code == 200
    assert "usersale" in page.text and "https://blog.example/b" in page.text
    assert str(user.id) in page.text  # the owner, as the admin API names it
    assert 'aria-current="page">All links</a>' in page.text
    assert "2 links" in page.text
    # Statistics are their owner's: offered on the admin's own link only.
    assert 'aria-label="Stats of' in page.text
    assert 'href="/stats/usersale"' not in page.text
    assert "<script>" not in page.text and " style=" not in page.text
    found = await client.get("/admin/links?q=SHOP", headers={**HTML, "HX-Request": "true"})
    assert found.text.lstrip().startswith('<div id="admin-link-list"')  # the list alone
    assert "usersale" in found.text and "blog.example" not in found.text
    assert "1 link matching" in found.text


async def test_a_user_who_is_not_an_admin_gets_the_403_page(client: httpx.AsyncClient) -> None:
    user = await admin_and_user(client)
    link = await shorten(client, user, "https://example.com/mine", code="mine")
    client.cookies.clear()
    signed_in = await client.post(
        "/login", data={"email": user.email, "password": PASSWORD}, headers=ORIGIN
    )
    assert SESSION_COOKIE in signed_in.cookies
    for path in ("/admin/links", "/admin/blocked-domains", "/admin/orphans"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Only an admin" in page.text
    refused = await client.post(
        f"/admin/links/{link['code']}/disable", data={"reason": "mine now"}, headers=ORIGIN
    )
    assert refused.status_code == 403
    assert (await client.get("/mine")).status_code == 302  # still redirects
    blocked = await client.post(
        "/admin/blocked-domains", data={"domain": "example.com"}, headers=ORIGIN
    )
    assert blocked.status_code == 403
    again = await client.post(
        "/api/links", json={"url": "https://example.com/x"}, headers=user.headers
    )
    assert again.status_code == 201  # nothing was blocked


async def test_disabling_a_link_makes_it_410_with_the_reason_until_enabled(
    client: httpx.AsyncClient,
) -> None:
    user = await admin_and_user(client)
    await shorten(client, user, "https://phish.example/login", code="phish")
    assert (await client.get("/phish")).status_code == 302

    done = await client.post(
        "/admin/links/phish/disable?q=phish&page=1",
        data={"reason": "Reported as phishing"},
        headers=ORIGIN,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/links?q=phish&page=1&disabled=phish"
    gone = await client.get("/phish", headers=HTML)
    assert gone.status_code == 410
    assert "Reported as phishing" in gone.text
    mine = (await client.get("/api/links/phish", headers=user.headers)).json()
    assert mine["disabled"] is True and mine["disabled_reason"] == "Reported as phishing"
    page = await client.get(done.headers["location"], headers=HTML)
    assert "Disabled encurta.test/phish" in page.text  # the notice
    assert '<span class="state state-off">Disabled</span>' in page.text
    assert "Reported as phishing" in page.text
    assert 'aria-label="Enable encurta.test/phish"' in page.text

    enabled = await client.post("/admin/links/phish/enable", headers=ORIGIN)
    assert enabled.headers["location"] == "/admin/links?enabled=phish"
    assert (await client.get("/phish")).status_code == 302
    page = await client.get("/admin/links", headers=HTML)
    assert '<span class="state state-on">Active</span>' in page.text


async def test_a_disable_without_a_reason_is_refused_next_to_the_field(
    client: httpx.AsyncClient,
) -> None:
    user = await admin_and_user(client)
    await shorten(client, user, "https://example.com/keep", code="keepme")
    for reason, says in (("   ", "Give a reason"), ("x" * 501, "at most 500 characters")):
        refused = await client.post(
            "/admin/links/keepme/disable", data={"reason": reason}, headers=ORIGIN
        )
        assert refused.status_code == 422
        assert says in refused.text
        assert 'aria-describedby="reason-keepme-error"' in refused.text
        assert 'id="reason-keepme-error"' in refused.text
    assert (await client.get("/keepme")).status_code == 302  # not disabled
    missing = await client.post(
        "/admin/links/nosuch/disable", data={"reason": "x"}, headers={**ORIGIN, **HTML}
    )
    assert missing.status_code == 404


async def test_a_blocked_domain_refuses_new_links_until_unblocked(
    client: httpx.AsyncClient,
) -> None:
    user = await admin_and_user(client)
    await shorten(client, user, "https://www.evil.example/old", code="older")
    empty = await client.get("/admin/blocked-domains", headers=HTML)
    assert "No domain is blocked." in empty.text
    assert '<label for="domain">Domain</label>' in empty.text

    added = await client.post(
        "/admin/blocked-domains", data={"domain": "HTTPS://Evil.example/x"}, headers=ORIGIN
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/blocked-domains?blocked=evil.example"
    refused = await client.post(
        "/api/links", json={"url": "https://sub.evil.example/a"}, headers=user.headers
    )
    assert refused.status_code == 422
    listed = await client.get("/api/admin/blocked-domains")  # the cookie of the admin
    assert [i["domain"] for i in listed.json()["items"]] == ["evil.example"]
    page = await client.get(added.headers["location"], headers=HTML)
    assert "Blocked evil.example" in page.text
    assert "UTC</span> by you</div>" in page.text  # who blocked it
    assert 'aria-label="Unblock evil.example"' in page.text
    assert (await client.get("/older")).status_code == 410  # its links are gone too
    listing = await client.get("/admin/links", headers=HTML)
    assert '<span class="state state-off">Domain blocked</span>' in listing.text
    assert "links to evil.example are blocked" in listing.text
    twice = await client.post(
        "/admin/blocked-domains", data={"domain": "evil.example"}, headers=ORIGIN
    )
    assert twice.headers["location"] == "/admin/blocked-domains?already=evil.example"

    removed = await client.post(
        "/admin/blocked-domains/remove", data={"domain": "evil.example"}, headers=ORIGIN
    )
    assert removed.headers["location"] == "/admin/blocked-domains?unblocked=evil.example"
    assert (await client.get("/api/admin/blocked-domains")).json() == {"items": []}
    assert (await client.get("/older")).status_code == 302
    listing = await client.get("/admin/links", headers=HTML)
    assert "Domain blocked" not in listing.text
    allowed = await client.post(
        "/api/links", json={"url": "https://sub.evil.example/a"}, headers=user.headers
    )
    assert allowed.status_code == 201


async def test_an_invalid_domain_is_said_next_to_the_field(client: httpx.AsyncClient) -> None:
    await admin_and_user(client)
    bad = await client.post(
        "/admin/blocked-domains", data={"domain": "user@evil.example"}, headers=ORIGIN
    )
    assert bad.status_code == 422
    assert 'aria-describedby="domain-error"' in bad.text
    assert "A domain has no user name" in bad.text
    assert 'value="user@evil.example"' in bad.text  # what was typed is kept
    assert (await client.get("/api/admin/blocked-domains")).json() == {"items": []}


async def test_orphan_visits_are_shown_per_day_and_path(client: httpx.AsyncClient) -> None:
    await admin_and_user(client)
    empty = await client.get("/admin/orphans", headers=HTML)
    assert empty.status_code == 200
    assert "No orphan visits in the last 30 days" in empty.text
    assert "An orphan visit is a request for a short URL whose code does not exist" in empty.text
    for _ in range(3):
        assert (await client.get("/nosuchcode")).status_code == 404
    await tally_of(client).flush()  # the tally is folded every ~10 s; now, here
    page = await client.get("/admin/orphans?days=7", headers=HTML)
    assert "<code>/nosuchcode</code></td><td>3</td>" in page.text
    assert '<option value="7" selected>Last 7 days</option>' in page.text
    odd = await client.get("/admin/orphans?days=nonsense&page=-4", headers=HTML)
    assert odd.status_code == 200 and "/nosuchcode" in odd.text


async def test_changes_without_this_sites_origin_are_refused(client: httpx.AsyncClient) -> None:
    user = await admin_and_user(client)
    await shorten(client, user, "https://example.com/safe", code="safe")
    for headers in ({}, {"Origin": "https://evil.example"}):
        disabled = await client.post(
            "/admin/links/safe/disable", data={"reason": "forged"}, headers={**HTML, **headers}
        )
        assert disabled.status_code == 403, headers
        blocked = await client.post(
            "/admin/blocked-domains", data={"domain": "example.com"}, headers=headers
        )
        assert blocked.status_code == 403
    assert (await client.get("/safe")).status_code == 302
    assert (await client.get("/api/admin/blocked-domains")).json() == {"items": []}
