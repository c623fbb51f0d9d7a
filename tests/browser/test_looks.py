"""Every page at 1280 and 360 px wide, light and dark: axe-core finds no serious or critical
violation (contrast included, in both schemes), and nothing is wider than the screen.

With SCREENSHOTS=folder (`make screenshots`: docs/screenshots) the pages are saved
as `<page>-<width>-<scheme>.png`, to be looked at by a person.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import look
from tests.support.accounts import PASSWORD, bearer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(live_server: Any) -> tuple[str, str]:
    """An account with a few links, made through the API, one of them clicked: its email
    and that link's code."""
    email = f"looks-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        assert api.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
        token = api.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        for url, title in (
            ("https://example.com/2026/12/release-notes-for-the-winter-update", "Release notes"),
            ("https://docs.example.org/guide/getting-started?utm_source=newsletter", None),
            ("https://shop.example.net/products/a-very-long-product-name-that-wraps", "Shop"),
        ):
            created = api.post(
                "/api/links",
                json={"url": url, "title": title, "tags": ["release", "blog"] if title else []},
                headers=bearer(token["access_token"]),
            )
            assert created.status_code == 201, created.text
        code = created.json()["code"]
        locked = api.post(
            "/api/links",
            json={"url": "https://example.com/private", "code": "members", "password": "x" * 12},
            headers=bearer(token["access_token"]),
        )
        assert locked.status_code == 201, locked.text
        spent = api.post(
            "/api/links",
            json={"url": "https://example.com/once", "code": "spent", "max_visits": 1},
            headers=bearer(token["access_token"]),
        )
        assert spent.status_code == 201, spent.text
        human = {"User-Agent": AGENTS[0], "X-Forwarded-For": "198.51.100.7"}
        assert api.get("/spent", headers=human).is_redirect
        assert api.get("/spent", headers=human).status_code == 410
        for n, agent in enumerate(AGENTS * 3):
            clicked = api.get(
                f"/{code}", headers={"User-Agent": agent, "X-Forwarded-For": f"192.0.2.{n}"}
            )
            assert clicked.is_redirect
    return email, code


AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]


def test_every_page_reads_well(looking: tuple[Any, str], account: tuple[str, str]) -> None:
    page, variant = looking
    email, code = account
    page.goto("/login")
    look(page, "login", variant)
    page.goto("/signup")
    look(page, "signup", variant)
    page.goto("/nosuchcode")
    look(page, "link-not-found", variant)
    page.goto("/spent")
    page.get_by_role("heading", name="gone", exact=False).wait_for()
    look(page, "link-gone", variant)
    page.goto("/members")
    look(page, "link-password", variant)

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/links")
    look(page, "links", variant)

    page.get_by_label("URL").fill("ftp://example.com/not-a-web-link")
    page.get_by_label("URL").evaluate("input => input.type = 'text'")  # past the browser's check
    page.get_by_role("button", name="Shorten").click()
    page.locator("#url-error").wait_for()
    look(page, "links-error", variant)

    page.goto("/account/keys")
    page.get_by_label("Name").fill("Nightly export")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("it is not shown again").wait_for()
    look(page, "keys", variant)

    page.goto(f"/stats/{code}")
    page.get_by_role("img", name="Clicks per day").wait_for()
    page.locator(".chart canvas").wait_for()  # uPlot drew it
    look(page, "stats", variant)
