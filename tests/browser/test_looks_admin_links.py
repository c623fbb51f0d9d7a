"""The shortener's admin pages at 1280 and 360 px wide, light and dark: no serious or
critical axe-core violation, nothing wider than the screen; saved with SCREENSHOTS set
(`make screenshots`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import look, sign_in
from tests.support.accounts import PASSWORD, bearer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_data(live_server: Any, admin: str) -> str:
    """A user's links (one disabled, one to a domain blocked later), two blocked domains,
    and orphan visits folded into the table (the server does that every ~10 s): the mark
    that the links' codes share, to search them by."""
    mark = f"looks{uuid.uuid4().hex[:6]}"
    email = f"{mark}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        assert api.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
        user = api.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        boss = api.post("/api/auth/login", json={"email": admin, "password": PASSWORD}).json()
        as_user, as_admin = bearer(user["access_token"]), bearer(boss["access_token"])
        for n, (url, title) in enumerate(
            (
                ("https://example.com/2026/12/release-notes-for-the-winter-update", "Release"),
                ("https://free-prizes.example.net/claim?id=8c1f0e7d9a", "You won!"),
                ("https://docs.example.org/guide/getting-started?utm_source=newsletter", None),
                ("https://cdn.malware.example/setup.exe", None),
            )
        ):
            made = api.post(
                "/api/links",
                json={"url": url, "title": title, "code": f"{mark}{n}", "tags": [mark]},
                headers=as_user,
            )
            assert made.status_code == 201, made.text
        disabled = api.patch(
            f"/api/admin/links/{mark}1",
            json={"disabled": True, "reason": "Reported as a scam by several visitors"},
            headers=as_admin,
        )
        assert disabled.status_code == 200, disabled.text
        for domain in ("free-prizes.example.net", "malware.example"):
            blocked = api.post(
                "/api/admin/blocked-domains", json={"domain": domain}, headers=as_admin
            )
            assert blocked.is_success, blocked.text
        for path in ("/wp-login.php", "/old-campaign", "/old-campaign", "/.env"):
            assert api.get(path).status_code == 404
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            rows = api.get("/api/stats/orphans", headers=as_admin).json()["items"]
            if any(row["path"] == "/old-campaign" for row in rows):
                break
            time.sleep(1)
    return mark


def test_the_admin_pages_read_well(looking: tuple[Any, str], admin: str, admin_data: str) -> None:
    page, variant = looking
    sign_in(page, admin)
    page.goto(f"/admin/links?q={admin_data}")
    look(page, "admin-links", variant)

    item = page.locator("ul.links > li", has_text=f"{admin_data}0")
    item.get_by_text("Disable…").click()
    item.get_by_label("Reason").evaluate("input => input.required = false")  # past the browser
    item.get_by_role("button", name="Disable").click()
    page.locator(f"#reason-{admin_data}0-error").wait_for()
    look(page, "admin-links-error", variant)

    page.goto("/admin/blocked-domains")
    look(page, "admin-blocked-domains", variant)
    page.get_by_label("Domain").fill("me@example.com")
    page.get_by_role("button", name="Block", exact=True).click()
    page.locator("#domain-error").wait_for()
    look(page, "admin-blocked-domains-error", variant)

    page.goto("/admin/orphans")
    page.get_by_role("cell", name="/old-campaign").wait_for()
    look(page, "admin-orphans", variant)
