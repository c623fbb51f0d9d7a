"""A person makes a link with options, finds it, edits it, and a visitor unlocks it, in
Chromium; axe-core checks the edit page."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import axe_violations, open_context, sign_in, stop_redirects
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration


def accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{page.url}: {violations}"


def test_make_find_edit_and_unlock_a_link(browser: Any, live_server: Any) -> None:
    email = f"edit-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        made = api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert made.status_code == 201, made.text
    context, watch = open_context(browser, live_server)
    page = context.new_page()
    sign_in(page, email)
    host = urlsplit(live_server.url).netloc

    # Two plain links, then one with options.
    for n in range(2):
        page.get_by_label("URL").fill(f"https://example.com/plain/{n}")
        page.get_by_role("button", name="Shorten").click()
        page.wait_for_url("**/links?created=*")
    page.get_by_label("URL").fill("https://example.com/first/target")
    page.get_by_text("Options").click()
    page.get_by_label("Title").fill("Quarterly report")
    page.get_by_label("Tags").fill("reports, q3")
    page.get_by_label("Maximum visits").fill("10")
    page.get_by_label("Link password").fill("open sesame 42")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")
    code = page.url.rsplit("=", 1)[1]
    page.get_by_text("3 links").wait_for()

    # The sort, by htmx: oldest first puts a plain link on top, and the order stays put.
    page.get_by_label("Sort").select_option("Oldest first")
    page.wait_for_url("**sort=created_at*")
    first = page.locator("#link-list .links > li").first
    assert "https://example.com/plain/0" in first.inner_text()
    page.get_by_label("Search").fill("quarterly")
    page.get_by_text("1 link matching").wait_for()
    assert "sort=created_at" in page.url
    accessible(page)

    page.get_by_role("link", name=f"Edit {host}/{code}").click()
    page.wait_for_url(f"**/links/{code}/edit")
    assert page.get_by_label("Title").input_value() == "Quarterly report"
    assert page.get_by_label("Maximum visits").input_value() == "10"
    accessible(page)
    page.get_by_label("Title").fill("Quarterly report (final)")
    page.get_by_label("URL").fill("https://example.com/final/target")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/links?updated={code}")
    page.get_by_text(f"Saved the changes to {host}/{code}").wait_for()
    item = page.locator("#link-list .links > li", has_text="Quarterly report (final)")
    assert "https://example.com/final/target" in item.inner_text()
    assert "https://example.com/first/target" not in page.content()

    # A visitor: the password form, then the new target.
    visitor, seen = open_context(browser, live_server)
    follow = visitor.new_page()
    redirects = stop_redirects(follow, f"/{code}")
    follow.goto(f"/{code}")
    follow.get_by_role("heading", name=f"The link /{code} is protected").wait_for()
    follow.get_by_label("Password").fill("open sesame 42")
    follow.get_by_role("button", name="Continue").click()
    follow.get_by_text("redirected").wait_for()
    visitor.close()
    assert redirects == ["https://example.com/final/target"]
    context.close()
    assert watch.elsewhere == [] and seen.elsewhere == []
    assert [e for e in watch.errors + seen.errors if "Failed to load resource" not in e] == []


def test_an_edit_error_is_shown_at_its_field(browser_page: Any, live_server: Any) -> None:
    page = browser_page
    email = f"edit-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        assert api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    sign_in(page, email)
    page.get_by_label("URL").fill("https://example.com/ruled")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")
    code = page.url.rsplit("=", 1)[1]
    page.goto(f"/links/{code}/edit")
    page.get_by_text("Redirect rules").click()
    page.locator("#rule-0-language").fill("português")
    page.locator("#rule-0-url").fill("https://example.pt/")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#rule-0-language-error")
    error.wait_for()
    assert "A language tag" in error.inner_text()
    assert page.locator("#rule-0-language").get_attribute("aria-invalid") == "true"
    assert page.locator("#rule-0-language").input_value() == "português"
    assert page.locator("#rule-0-url").input_value() == "https://example.pt/"
    accessible(page)
