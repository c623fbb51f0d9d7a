"""A person signs up, shortens a URL with the form, finds it, signs out and in again, in
Chromium; axe-core checks every page on the way, in light and dark."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import axe_violations, stop_redirects
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration


def accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{page.url}: {violations}"


def test_sign_up_shorten_find_sign_out_and_in(browser_page: Any) -> None:
    page = browser_page
    email = f"web-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/links")
    page.wait_for_url("**/login?next=/links")  # no session: through refresh to sign-in
    accessible(page)

    page.get_by_role("link", name="Sign up").first.click()
    page.wait_for_url("**/signup")
    accessible(page)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/links")
    accessible(page)

    page.get_by_label("URL").fill("https://example.com/a/page/worth/sharing")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")
    assert page.get_by_text("https://example.com/a/page/worth/sharing").is_visible()
    page.get_by_label("URL").fill("https://example.org/another")
    page.get_by_text("Options").click()
    page.get_by_label("Title").fill("Another page")
    page.get_by_label("Tags").fill("docs, launch")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")
    page.get_by_text("2 links").wait_for()
    accessible(page)

    # A tag leads to the list of its links.
    page.get_by_role("link", name="launch").click()
    page.get_by_text("1 link tagged").wait_for()
    assert page.get_by_text("Another page").is_visible()
    page.get_by_role("link", name="all tags").click()
    page.get_by_text("2 links").wait_for()

    # htmx: typing in the search box replaces the list, no full page load.
    page.get_by_label("Search").fill("worth")
    page.get_by_text("1 link matching").wait_for()
    assert page.get_by_text("https://example.org/another").count() == 0
    assert page.get_by_text("https://example.com/a/page/worth/sharing").is_visible()
    accessible(page)

    # Copy puts the short URL on the clipboard (a script of our own origin, no inline one).
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_role("button", name="Copy")
    copy.click()
    page.get_by_role("button", name="Copied").wait_for()
    short_url = page.locator("a.short").get_attribute("href")
    assert page.evaluate("navigator.clipboard.readText()") == short_url
    assert short_url.startswith("http://127.0.0.1:")

    # The QR code downloads, as SVG and PNG, with the session cookie.
    for name, suffix in (("QR code", ".svg"), ("PNG", ".png")):
        with page.expect_download() as download:
            page.get_by_role("link", name=name).first.click()
        assert download.value.suggested_filename.endswith(suffix)
        assert Path(download.value.path()).stat().st_size > 100

    # Delete asks first.
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("heading", name="Delete this link?").wait_for()
    accessible(page)
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/links?deleted=*")
    page.get_by_text("1 link").first.wait_for()
    accessible(page)

    # An API key: made, copied once, revoked.
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url("**/account/keys")
    accessible(page)
    page.get_by_label("Name").fill("Deploy script")
    page.get_by_label("links:write").check()
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("it is not shown again").wait_for()
    key = page.locator("code.key").inner_text()
    assert key.startswith("enc_")
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == key
    accessible(page)
    page.get_by_role("button", name="Revoke Deploy script").click()
    page.get_by_text("The key is revoked").wait_for()
    assert page.get_by_text("No keys yet.").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/links")
    page.get_by_text("1 link").first.wait_for()


def test_a_wrong_password_is_said_on_the_page(browser_page: Any) -> None:
    page = browser_page
    page.goto("/login")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert "wrong" in page.get_by_role("alert").inner_text()
    accessible(page)


def test_an_error_is_a_page(browser_page: Any) -> None:
    page = browser_page
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Not Found").is_visible()
    accessible(page)
    # The front door's answer (the express lane of `encurta serve`), in the same layout.
    response = page.goto("/nosuchcode")
    assert response is not None and response.status == 404
    assert page.get_by_text("There is no link 'nosuchcode'.").is_visible()
    accessible(page)


def test_a_request_to_another_origin_is_caught(browser: Any, live_server: Any) -> None:
    """Two guards: the page's CSP refuses to reach out, and, were it lifted, the tests'
    route guard (which `browser_page` asserts on) sees the request."""
    from tests.browser.conftest import open_context

    reach_out = "fetch('https://cdn.example.net/x.js').catch(() => null)"
    for bypass_csp in (False, True):
        context, watch = open_context(browser, live_server, bypass_csp=bypass_csp)
        page = context.new_page()
        page.goto("/login")
        page.evaluate(reach_out)
        page.wait_for_timeout(300)
        context.close()
        if bypass_csp:
            assert watch.elsewhere == ["https://cdn.example.net/x.js"]
        else:
            assert watch.elsewhere == []
            assert any("Content Security Policy" in error for error in watch.errors)


def test_a_password_link_unlocks_in_the_browser(browser: Any, live_server: Any) -> None:
    from tests.browser.conftest import open_context

    target = "https://example.com/members/only"
    with httpx.Client(base_url=live_server.url) as api:
        email = f"pw-{uuid.uuid4().hex[:8]}@example.com"
        api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        token = api.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        made = api.post(
            "/api/links",
            json={"url": target, "password": "open sesame 42"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert made.status_code == 201, made.text
        code = made.json()["code"]

    context, watch = open_context(browser, live_server)
    page = context.new_page()
    redirects = stop_redirects(page, f"/{code}")
    page.goto(f"/{code}")
    page.get_by_role("heading", name=f"The link /{code} is protected").wait_for()
    accessible(page)
    page.get_by_label("Password").fill("not it")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("alert").wait_for()
    accessible(page)
    page.get_by_label("Password").fill("open sesame 42")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("redirected").wait_for()
    context.close()
    assert redirects == [target] and watch.elsewhere == []
    assert [e for e in watch.errors if "Failed to load resource" not in e] == []


def test_following_a_short_url_shows_on_its_statistics(browser: Any, live_server: Any) -> None:
    from tests.browser.conftest import open_context

    target = "https://example.com/followed"
    email = f"follow-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    context, watch = open_context(browser, live_server)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/links")
    page.get_by_label("URL").fill(target)
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")
    code = page.url.rsplit("=", 1)[1]

    redirects = stop_redirects(page, f"/{code}")
    page.goto(f"/{code}")
    assert redirects == [target]
    page.goto(f"/stats/{code}")
    for _ in range(50):  # the click reaches analytics through the bus
        if page.locator(".totals dd").first.inner_text() == "1":
            break
        page.wait_for_timeout(100)
        page.reload()
    assert page.locator(".totals dd").first.inner_text() == "1"
    page.get_by_role("img", name="Clicks per day").wait_for()
    page.locator(".chart canvas").wait_for()
    accessible(page)
    # Live: a click while the page is open is listed at once (live.js reads the stream).
    page.get_by_text("Waiting for clicks").wait_for()
    with httpx.Client(base_url=live_server.url) as api:
        assert api.get(f"/{code}", headers={"Referer": "https://news.example.org/"}).is_redirect
    page.locator(".live-clicks li").first.wait_for()
    assert "from news.example.org" in page.locator(".live-clicks li").first.inner_text()
    accessible(page)
    context.close()
    assert watch.elsewhere == []
