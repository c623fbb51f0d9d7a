"""What the browser keeps of a signed-in page once the person has left it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration


def test_no_page_is_kept_in_local_storage_past_sign_out(browser_page: Any) -> None:
    page = browser_page
    page.goto("/signup")
    page.get_by_label("Email").fill(f"hist-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/links")
    page.get_by_label("URL").fill("https://example.com/private-target")
    page.get_by_text("Options").click()
    page.get_by_label("Title").fill("Private title")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/links?created=*")

    # The search pushes a URL: htmx would save the page it leaves in sessionStorage, where
    # the list outlives the sign-out in this tab (Cache-Control: no-store says no copy is
    # kept).
    page.get_by_label("Search").fill("private")
    page.get_by_text("1 link matching").wait_for()
    page.wait_for_url("**/links?q=private*")
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert "Private title" not in stored and "private-target" not in stored

    # Back, as a search's history entry: a whole page from the server, not a fragment.
    page.go_back()
    page.get_by_role("button", name="Sign out").wait_for()
    assert page.get_by_role("heading", level=1).count() == 1

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert "Private title" not in page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
