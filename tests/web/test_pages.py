"""The web app over HTTP: pages, the session cookie every module reads, and CSRF refused.

The browser tests (tests/browser) drive the same pages in Chromium; these check what a
browser does not show: headers, cookies' attributes, the origin check, the API unchanged.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from app.kernel.session import REFRESH_COOKIE, SESSION_COOKIE
from app.modules.auth.settings import AuthSettings
from tests.conftest import FAST_ARGON2, AppFactory
from tests.support.accounts import EMAIL, PASSWORD, bearer, login, register

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://encurta.test"}
HTML = {"Accept": "text/html"}


async def sign_up(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post(
        "/signup", data={"email": EMAIL, "password": PASSWORD}, headers=ORIGIN
    )
    assert response.status_code == 303, response.text
    return response


async def test_the_sign_in_page_is_labelled_and_locked_down(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<label for="email">Email</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "<script>" not in page.text and " style=" not in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_assets_are_served_from_this_origin_with_immutable_urls(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/login")
    urls = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert {url.split("?")[0] for url in urls if url.startswith("/static/")} == {
        "/static/app.css",
        "/static/app.js",
        "/static/vendor/htmx.min.js",
    }
    assert all(url.startswith(("/", "data:")) for url in urls), urls  # nothing from elsewhere
    for url in urls:
        if url.startswith("/static/"):
            asset = await client.get(url)
            assert asset.status_code == 200
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_signing_up_sets_a_session_the_other_modules_accept(
    client: httpx.AsyncClient,
) -> None:
    response = await sign_up(client)
    assert response.headers["location"] == "/links"
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert "httponly" in cookies[SESSION_COOKIE] and "samesite=lax" in cookies[SESSION_COOKIE]
    assert "path=/auth/" in cookies[REFRESH_COOKIE] and "httponly" in cookies[REFRESH_COOKIE]
    assert "secure" not in cookies[SESSION_COOKIE]  # plain http here; https sets Secure

    created = await client.post(
        "/links", data={"url": "https://example.com/from-the-form"}, headers=ORIGIN
    )
    assert created.status_code == 303
    page = await client.get("/links", headers=HTML)
    assert "https://example.com/from-the-form" in page.text
    # The shortener's API takes the same cookie as a Bearer token, and the owner is the same.
    listed = await client.get("/api/links")
    assert listed.status_code == 200
    assert [i["url"] for i in listed.json()["items"]] == ["https://example.com/from-the-form"]
    me = await client.get("/api/auth/me")
    assert me.json()["email"] == EMAIL


async def test_a_form_of_another_site_cannot_act_with_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    for headers in ({"Origin": "https://evil.example"}, {}, {"Referer": "https://evil.example/x"}):
        forged = await client.post(
            "/links", data={"url": "https://example.com/forged"}, headers={**HTML, **headers}
        )
        assert forged.status_code == 403, headers
        assert forged.headers["content-type"].startswith("text/html")  # a page, not JSON
        api = await client.post(
            "/api/links", json={"url": "https://example.com/forged"}, headers=headers
        )
        assert api.status_code == 403
    referred = await client.post(
        "/links",
        data={"url": "https://example.com/referred"},
        headers={"Referer": "http://encurta.test/links"},
    )
    assert referred.status_code == 303  # no Origin, but a Referer of this site
    listed = (await client.get("/api/links")).json()["items"]
    assert [i["url"] for i in listed] == ["https://example.com/referred"]
    # Signing in and out are forms too: another site can neither log you in nor out.
    out = await client.post("/auth/logout", headers={"Origin": "https://evil.example"})
    assert out.status_code == 403
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_a_header_wins_over_the_cookie(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    assert (await client.get("/api/links", headers=bearer("not-a-token"))).status_code == 401
    client.cookies.clear()
    tokens = await login(client)
    assert (await client.get("/api/links", headers=bearer(tokens["access_token"]))).is_success


async def test_without_a_session_pages_go_through_refresh_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    away = await client.get("/links?q=x", headers=HTML)
    assert away.status_code == 303
    assert away.headers["location"] == "/auth/refresh?next=/links%3Fq%3Dx"
    refreshed = await client.get(away.headers["location"])
    assert refreshed.headers["location"] == "/login?next=/links%3Fq%3Dx"
    signed_in = await client.post(
        "/login",
        data={"email": EMAIL, "password": PASSWORD, "next": "/links?q=x"},
        headers=ORIGIN,
    )
    assert signed_in.headers["location"] == "/links?q=x"
    # The access cookie gone (expired), the refresh cookie renews the session.
    client.cookies.delete(SESSION_COOKIE)
    renewed = await client.get("/auth/refresh?next=/links")
    assert renewed.headers["location"] == "/links"
    assert (await client.get("/links", headers=HTML)).status_code == 200
    logged_out = await client.post("/auth/logout", headers=ORIGIN)
    assert logged_out.headers["location"] == "/login"
    assert (await client.get("/api/links")).status_code == 401


async def test_a_wrong_password_shows_the_form_again(client: httpx.AsyncClient) -> None:
    await register(client)
    wrong = await client.post(
        "/login", data={"email": EMAIL, "password": "not it at all"}, headers=ORIGIN
    )
    assert wrong.status_code == 401
    assert "The email or password is wrong." in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    offsite = await client.post(
        "/login",
        data={"email": EMAIL, "password": PASSWORD, "next": "//evil.example/"},
        headers=ORIGIN,
    )
    assert offsite.headers["location"] == "/links"


async def test_errors_are_pages_for_a_browser_and_problems_for_the_api(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page.headers
    api = await client.get("/api/no/such", headers=HTML)
    assert api.headers["content-type"] == "application/problem+json"


async def test_the_form_says_what_is_wrong_with_a_url(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    bad = await client.post("/links", data={"url": "ftp://example.com"}, headers=ORIGIN)
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in bad.text
    taken = await client.post(
        "/links", data={"url": "https://example.com", "code": "login"}, headers=ORIGIN
    )
    assert taken.status_code == 422
    assert "reserved" in taken.text


async def test_a_missing_or_gone_link_is_a_page_for_a_browser(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    missing = await client.get("/nosuchcode", headers=HTML)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "There is no link &#39;nosuchcode&#39;." in missing.text
    assert "Sign out" in missing.text  # the layout's navigation knows the session
    assert "default-src 'self'" in missing.headers["content-security-policy"]
    made = await client.post(
        "/api/links", json={"url": "https://example.com/soon-gone"}, headers=ORIGIN
    )
    code = made.json()["code"]
    assert (await client.delete(f"/api/links/{code}", headers=ORIGIN)).status_code == 204
    gone = await client.get(f"/{code}", headers=HTML)
    assert gone.status_code == 410
    assert "has expired or was deleted" in gone.text
    api = await client.get(f"/{code}")
    assert api.headers["content-type"] == "application/problem+json"


async def test_cookies_are_secure_behind_a_trusted_tls_proxy_only(
    app_client: AppFactory,
) -> None:
    https = {**ORIGIN, "X-Forwarded-Proto": "https"}
    async with app_client() as client:  # no trusted proxy: the header is anyone's word
        await register(client)
        direct = await client.post(
            "/login", data={"email": EMAIL, "password": PASSWORD}, headers=https
        )
        assert all("secure" not in c.lower() for c in direct.headers.get_list("set-cookie"))
    proxied = AuthSettings(argon2=FAST_ARGON2, trusted_proxies=["203.0.113.7/32"])
    async with app_client(auth=proxied) as client:
        behind = await client.post(
            "/login", data={"email": EMAIL, "password": PASSWORD}, headers=https
        )
        cookies = behind.headers.get_list("set-cookie")
        assert len(cookies) == 2 and all("; secure" in c.lower() for c in cookies)


async def test_deleting_asks_first_and_refuses_another_site(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    made = await client.post("/links", data={"url": "https://example.com/x"}, headers=ORIGIN)
    code = made.headers["location"].rsplit("=", 1)[1]
    asked = await client.get(f"/links/{code}/delete", headers=HTML)
    assert asked.status_code == 200 and "Delete this link?" in asked.text
    forged = await client.post(f"/links/{code}/delete", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    deleted = await client.post(f"/links/{code}/delete", headers=ORIGIN)
    assert deleted.headers["location"] == f"/links?deleted={code}"
    assert (await client.get("/api/links")).json()["items"] == []
    again = await client.get(f"/links/{code}/delete", headers=HTML)
    assert again.status_code == 404 and again.headers["content-type"].startswith("text/html")


async def test_a_links_statistics_page(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    made = await client.post("/links", data={"url": "https://example.com/counted"}, headers=ORIGIN)
    code = made.headers["location"].rsplit("=", 1)[1]
    visitor = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"}
    assert (await client.get(f"/{code}", headers=visitor)).status_code in (301, 302, 307, 308)
    page = None
    for _ in range(100):  # the click reaches analytics through the bus
        page = await client.get(f"/stats/{code}", headers=HTML)
        if "<dt>All clicks</dt><dd>1</dd>" in page.text:
            break
        await asyncio.sleep(0.05)
    assert page is not None and "<dt>All clicks</dt><dd>1</dd>" in page.text, page.text
    assert page.status_code == 200
    assert 'role="img" aria-labelledby="chart-title"' in page.text
    assert ">Clicks per day</h2>" in page.text
    assert "/static/vendor/uPlot.iife.min.js?v=" in page.text
    # Live clicks: the page's script follows the stream (tests/modules/analytics/test_live.py)
    assert f'data-live="/api/stats/{code}/live"' in page.text and 'aria-live="polite"' in page.text
    assert "/static/live.js?v=" in page.text
    week = await client.get(f"/stats/{code}?interval=week&include_bots=true", headers=HTML)
    assert ">Clicks per week</h2>" in week.text
    bad = await client.get(f"/stats/{code}?interval=year", headers=HTML)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    other = await client.get("/stats/nosuchcode", headers=HTML)
    assert other.status_code == 404


async def test_a_title_and_tags_from_the_form_and_the_list_by_tag(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    tagged = {"url": "https://example.com/t", "title": "Launch post", "tags": "launch, Blog ,"}
    assert (await client.post("/links", data=tagged, headers=ORIGIN)).status_code == 303
    plain = {"url": "https://example.com/plain"}
    assert (await client.post("/links", data=plain, headers=ORIGIN)).status_code == 303
    item = next(i for i in (await client.get("/api/links")).json()["items"] if i["title"])
    assert item["tags"] == ["launch", "Blog"]
    by_tag = await client.get("/links?tag=blog", headers=HTML)
    assert "1 link tagged" in by_tag.text and "https://example.com/t<" in by_tag.text
    assert "https://example.com/plain" not in by_tag.text
    too_long = await client.post(
        "/links", data={"url": "https://example.com/x", "tags": "x" * 60}, headers=ORIGIN
    )
    assert too_long.status_code == 422 and 'id="tags-error"' in too_long.text
    assert 'value="' + "x" * 60 + '"' in too_long.text  # what was typed is kept


async def test_api_keys_made_once_shown_and_revoked_from_the_page(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    made = await client.post(
        "/account/keys",
        data={"name": "CI", "scopes": ["links:read", "links:write"]},
        headers=ORIGIN,
    )
    assert made.status_code == 201
    key = re.search(r'<code class="key grow">(enc_\w+)</code>', made.text)
    assert key is not None
    # The key works (at auth at once; in the other modules once its event arrives).
    assert (await client.get("/api/auth/me", headers={"X-Api-Key": key.group(1)})).is_success
    page = await client.get("/account/keys", headers=HTML)
    assert key.group(1) not in page.text and "CI" in page.text  # shown once only
    key_id = re.search(r'action="/account/keys/([0-9a-f-]+)/revoke"', page.text)
    assert key_id is not None
    forged = await client.post(
        f"/account/keys/{key_id.group(1)}/revoke", headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    revoked = await client.post(f"/account/keys/{key_id.group(1)}/revoke", headers=ORIGIN)
    assert revoked.headers["location"] == "/account/keys?revoked"
    refused = await client.get("/api/auth/me", headers={"X-Api-Key": key.group(1)})
    assert refused.status_code == 401
    no_scope = await client.post("/account/keys", data={"name": "x"}, headers=ORIGIN)
    assert no_scope.status_code == 422 and "at least one permission" in no_scope.text
    admin_scope = await client.post(
        "/account/keys", data={"name": "x", "scopes": "admin"}, headers=ORIGIN
    )
    assert admin_scope.status_code in (201, 403)  # the first account is the admin


async def test_imported_clicks_are_shown_apart_from_counted_ones(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    imported = await client.post(
        "/api/imports?format=csv",
        content=b"url,code,clicks\nhttps://example.com/old,from-yourls,42\n",
        headers=ORIGIN,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 1

    page = await client.get("/links", headers=HTML)

    assert "0 clicks (and 42 imported)" in page.text
