"""The account and admin pages of auth in Chromium: an admin disabling a user (the issue's
acceptance test), changing a password, deleting an account, making an invite; axe-core on
every page on the way."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser.conftest import axe_violations, open_context, sign_in
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a different and unusual passphrase"


def accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{page.url}: {violations}"


def sign_up(page: Any, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/links")


def find_on_users_page(page: Any, name: str) -> Any:
    """The button named `name` on /admin/users, on whichever page of accounts it is."""
    page.goto("/admin/users")
    button = page.get_by_role("button", name=name, exact=True)
    while button.count() == 0:
        page.get_by_role("link", name="Next").click()
        page.wait_for_load_state()
    return button


def test_an_admin_disabling_a_user(browser: Any, live_server: Any, admin: str) -> None:
    """A user signed in in one browser; an admin, in another, disables the account on
    /admin/users; the user's next page load lands on sign-in, and signing in is refused."""
    email = f"disabled-{uuid.uuid4().hex[:8]}@example.com"
    user_context, user_watch = open_context(browser, live_server)
    admin_context, admin_watch = open_context(browser, live_server)
    try:
        user = user_context.new_page()
        sign_up(user, email)
        user.goto("/account")
        user.get_by_text(email).wait_for()

        boss = admin_context.new_page()
        sign_in(boss, admin)
        boss.get_by_role("link", name="Account").click()
        boss.wait_for_url("**/account")
        boss.goto("/admin/users")
        assert boss.get_by_role("link", name="Users").get_attribute("aria-current") == "page"
        accessible(boss)
        find_on_users_page(boss, f"Disable {email}").click()
        boss.get_by_text(f"{email} is disabled").wait_for()
        assert boss.get_by_role("button", name=f"Enable {email}", exact=True).is_visible()
        accessible(boss)

        # The user's next page load: its session is over, so through refresh to sign-in.
        user.reload()
        user.wait_for_url("**/login?next=/account")
        user.goto("/links")
        user.wait_for_url("**/login?next=/links")
        user.get_by_label("Email").fill(email)
        user.get_by_label("Password").fill(PASSWORD)
        user.get_by_role("button", name="Sign in").click()
        user.get_by_text("This account is disabled.").wait_for()
        assert "/login" in user.url

        # Enabled again, it may sign in.
        find_on_users_page(boss, f"Enable {email}").click()
        boss.get_by_text(f"{email} is enabled again").wait_for()
        user.get_by_label("Password").fill(PASSWORD)
        user.get_by_role("button", name="Sign in").click()
        user.wait_for_url("**/links")
    finally:
        user_context.close()
        admin_context.close()
    for watch in (user_watch, admin_watch):
        assert watch.elsewhere == []
        assert [e for e in watch.errors if "Failed to load resource" not in e] == []


def test_changing_the_password_and_deleting_the_account(browser_page: Any, admin: str) -> None:
    page = browser_page
    email = f"changer-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(page, email)
    page.get_by_role("link", name="Account").click()
    page.wait_for_url("**/account")
    accessible(page)

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("The current password is wrong.").wait_for()
    accessible(page)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password is changed.").wait_for()
    page.goto("/links")  # still signed in, with the new cookies
    page.wait_for_url("**/links")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("The email or password is wrong.").wait_for()
    sign_in(page, email, NEW_PASSWORD)

    page.goto("/account")
    page.get_by_role("link", name="Delete account…").click()
    page.wait_for_url("**/account/delete")
    accessible(page)
    page.get_by_label("Password").fill("wrong wrong")
    page.get_by_role("button", name="Delete my account").click()
    page.get_by_text("The password is wrong.").wait_for()
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url("**/login?deleted")
    page.get_by_text("Your account is deleted.").wait_for()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("The email or password is wrong.").wait_for()


def test_an_admin_makes_and_revokes_an_invite(browser_page: Any, admin: str) -> None:
    page = browser_page
    sign_in(page, admin)
    page.goto("/admin/invites")
    accessible(page)
    invitee = f"invited-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Email (optional)").fill(invitee)
    page.get_by_label("Expires after (hours)").fill("48")
    page.get_by_role("button", name="Create invite").click()
    page.get_by_text("Copy the link now").wait_for()
    accessible(page)
    link = page.locator("code.key").inner_text()
    assert link.startswith(live_server_origin(page) + "/signup?invite=")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link

    page.goto("/admin/invites")
    assert page.locator("code.key").count() == 0  # shown once
    page.get_by_role("button", name=f"Revoke the invite for {invitee}", exact=False).click()
    page.get_by_text("The invite is revoked").wait_for()
    assert page.get_by_text(invitee).count() == 0


def live_server_origin(page: Any) -> str:
    return str(page.evaluate("location.origin"))
