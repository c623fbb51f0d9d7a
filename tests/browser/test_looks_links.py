"""The links page's create form with its Options open and the edit page, at 1280 and 360 px,
light and dark: no serious axe violation, nothing wider than the screen (screenshots with
SCREENSHOTS=folder, as test_looks.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import look, sign_in
from tests.support.accounts import PASSWORD, bearer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(live_server: Any) -> str:
    """An account with a link that uses every option (the edit page shows them all)."""
    email = f"looks-links-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=live_server.url) as api:
        assert api.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
        token = api.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()
        created = api.post(
            "/api/links",
            json={
                "url": "https://example.com/2026/12/release-notes-for-the-winter-update",
                "code": "winter",
                "title": "Release notes",
                "tags": ["release", "blog"],
                "expires_at": "2030-12-31T23:59:00Z",
                "max_visits": 1000,
                "password": "x" * 12,
                "forward_query": True,
                "redirect_rules": [
                    {"when": {"device": "ios"}, "url": "https://apps.example.com/ios"},
                    {
                        "when": {"language": "pt", "query": {"utm_source": "news"}},
                        "url": "https://example.com.br/notas",
                    },
                ],
            },
            headers=bearer(token["access_token"]),
        )
        assert created.status_code == 201, created.text
    return email


def test_the_link_forms_read_well(looking: tuple[Any, str], account: str) -> None:
    page, variant = looking
    sign_in(page, account)
    page.get_by_text("Options").click()
    page.get_by_label("Title").wait_for()
    look(page, "links-options", variant)
    page.get_by_label("Maximum visits").fill("0")
    page.get_by_label("URL").fill("https://example.com/with/an/error")
    page.get_by_text("Redirect rules").click()
    page.locator("#rule-0-url").fill("https://example.com/no/condition")
    # The browser's own check would stop a 0 before the server says it: skip it.
    page.locator("form[method=post][action='/links']").evaluate("form => form.noValidate = true")
    page.get_by_role("button", name="Shorten").click()
    page.locator("#max_visits-error").wait_for()
    look(page, "links-options-errors", variant)
    page.goto("/links/winter/edit")
    look(page, "link-edit", variant)
