"""An admin disables a user's link from the admin page, sees it marked, and enables it
again, in Chromium; blocks and unblocks a domain; axe-core checks each admin page."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import axe_violations, sign_in
from tests.support.accounts import PASSWORD, bearer

pytestmark = pytest.mark.integration


def accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{page.url}: {violations}"


def users_link(server: Any) -> str:
    """A new user's link, made through the API: its code."""
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    code = f"adm{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=server.url) as api:
        assert api.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
        token = api.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        made = api.post(
            "/api/links",
            json={"url": "https://example.com/reported", "code": code},
            headers=bearer(token["access_token"]),
        )
        assert made.status_code == 201, made.text
    return code


def visit(server: Any, code: str) -> int:
    return httpx.get(f"{server.url}/{code}").status_code


def test_an_admin_disables_a_link_and_enables_it_again(
    browser_page: Any, live_server: Any, admin: str
) -> None:
    page = browser_page
    code = users_link(live_server)
    assert visit(live_server, code) == 302
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.wait_for_url("**/admin/links")
    accessible(page)

    page.get_by_label("Search").fill(code)  # htmx: the list alone is replaced
    page.get_by_text(f"1 link matching “{code}”").wait_for()
    item = page.locator("ul.links > li", has_text=code)
    assert item.get_by_text("Active").is_visible()
    item.get_by_text("Disable…").click()
    item.get_by_label("Reason").fill("Reported as phishing")
    item.get_by_role("button", name="Disable").click()
    page.wait_for_url(f"**/admin/links?q={code}&page=1&disabled={code}")
    assert page.get_by_text(f"/{code}: its visitors now get").is_visible()
    item = page.locator("ul.links > li", has_text=code)
    assert item.locator(".state").inner_text() == "Disabled"
    assert item.get_by_text("Reported as phishing").is_visible()
    accessible(page)
    assert visit(live_server, code) == 410

    item.get_by_role("button", name="Enable").click()
    page.wait_for_url(f"**/admin/links?q={code}&page=1&enabled={code}")
    assert page.locator("ul.links > li", has_text=code).locator(".state").inner_text() == "Active"
    assert visit(live_server, code) == 302


def test_an_admin_blocks_and_unblocks_a_domain_and_sees_orphan_visits(
    browser_page: Any, live_server: Any, admin: str
) -> None:
    page = browser_page
    domain = f"spam-{uuid.uuid4().hex[:8]}.example"
    orphan = f"/gone{uuid.uuid4().hex[:8]}"
    assert httpx.get(f"{live_server.url}{orphan}").status_code == 404
    sign_in(page, admin)
    page.goto("/admin/blocked-domains")
    accessible(page)
    page.get_by_label("Domain").fill("not a domain")
    page.get_by_role("button", name="Block", exact=True).click()
    page.locator("#domain-error").wait_for()
    accessible(page)  # with the error shown
    page.get_by_label("Domain").fill(f"https://{domain}/offer")
    page.get_by_role("button", name="Block", exact=True).click()
    page.wait_for_url(f"**/admin/blocked-domains?blocked={domain}")
    unblock = page.get_by_role("button", name=f"Unblock {domain}")
    assert unblock.is_visible()
    unblock.click()
    page.wait_for_url(f"**/admin/blocked-domains?unblocked={domain}")
    assert page.get_by_role("button", name=f"Unblock {domain}").count() == 0

    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Orphan visits"
    ).click()
    page.wait_for_url("**/admin/orphans")
    assert page.get_by_role("heading", name="Orphan visits", exact=True).is_visible()
    page.get_by_label("Period").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/admin/orphans?days=7")
    # The server folds its tally into the table every ~10 s.
    deadline = time.monotonic() + 40
    while page.get_by_role("cell", name=orphan).count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        page.reload()
    row = page.get_by_role("row", name=orphan)
    assert row.get_by_role("cell").nth(2).inner_text() == "1"
    accessible(page)
