"""The navigation offers what the viewer may use: the admin pages to admins only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import sign_in
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration


def test_only_an_admin_is_offered_the_admin_pages(
    browser_page: Any, live_server: Any, admin: str
) -> None:
    page = browser_page
    sign_in(page, admin)
    main = page.get_by_role("navigation", name="Main")
    assert main.get_by_role("link", name="Admin").is_visible()

    email = f"nav-{uuid.uuid4().hex[:8]}@example.com"
    made = httpx.post(
        f"{live_server.url}/api/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    page.context.clear_cookies()
    sign_in(page, email)
    assert main.get_by_role("link", name="Links").is_visible()
    assert main.get_by_role("link", name="Admin").count() == 0
