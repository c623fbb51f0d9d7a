"""The account and admin pages of auth at 1280 and 360 px, light and dark: axe-core finds
no serious or critical violation and nothing is wider than the screen. With SCREENSHOTS=
folder they are saved as `<page>-<width>-<scheme>.png` (`make screenshots`)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import look, sign_in
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(live_server: Any, admin: str) -> str:
    """A few accounts for the admin's list, one of them disabled; the admin's email."""
    with httpx.Client(base_url=live_server.url) as api:
        token = api.post("/api/auth/login", json={"email": admin, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for n, role in enumerate(("user", "admin", "user")):
            made = api.post(
                "/api/admin/users",
                json={
                    "email": f"looks-{n}-{uuid.uuid4().hex[:6]}@example.com",
                    "password": PASSWORD,
                    "role": role,
                },
                headers=headers,
            )
            assert made.status_code == 201, made.text
        off = api.patch(
            f"/api/admin/users/{made.json()['id']}", json={"is_active": False}, headers=headers
        )
        assert off.status_code == 200, off.text
        invite = api.post("/api/admin/invites", json={"expires_in_hours": 24}, headers=headers)
        assert invite.status_code == 201, invite.text
    return admin


def test_the_account_and_admin_pages_read_well(looking: tuple[Any, str], people: str) -> None:
    page, variant = looking
    sign_in(page, people)

    page.goto("/account")
    look(page, "account", variant)
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password").fill("short")
    page.get_by_label("New password").evaluate("input => input.minLength = 0")
    page.get_by_role("button", name="Change password").click()
    page.locator("#new_password-error").wait_for()
    look(page, "account-error", variant)

    page.goto("/account/delete")
    look(page, "account-delete", variant)

    page.goto("/admin/users")
    look(page, "admin-users", variant)

    page.goto("/admin/invites")
    page.get_by_label("Email (optional)").fill("someone.with.a.long.address@example.com")
    page.get_by_role("button", name="Create invite").click()
    page.get_by_text("Copy the link now").wait_for()
    look(page, "admin-invites", variant)
