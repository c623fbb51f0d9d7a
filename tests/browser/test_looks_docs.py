"""`/docs` in a real browser: axe-core and no overflow at 1280/360 px, light and dark (with
SCREENSHOTS=folder saved as `docs-<width>-<scheme>.png`); no CSP refusal (the fixture
fails on a console error); the table of contents leads to each operation; the navigation
of a signed-in visitor offers it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import look, sign_in

pytestmark = pytest.mark.integration


def test_the_api_reference_reads_well(looking: tuple[Any, str]) -> None:
    page, variant = looking
    page.goto("/docs")
    page.get_by_role("heading", name="API reference").wait_for()
    look(page, "docs", variant, full_page=False)  # the whole reference is ~24,000 px tall


def test_the_contents_lead_to_an_operation(browser_page: Any, admin: str) -> None:
    page = browser_page
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API docs").click()
    page.wait_for_url("**/docs")
    contents = page.get_by_role("navigation", name="Contents")
    contents.get_by_role("link", name="POST /api/links").click()
    page.wait_for_url("**/docs#links-create")
    heading = page.locator("#links-create")
    assert heading.is_visible()
    article = page.get_by_role("article", name="POST /api/links")
    assert article.get_by_text("Shorten a URL").is_visible()
    assert article.get_by_text("Bearer token or API key").is_visible()
    assert article.get_by_role("cell", name="409").is_visible()
    page.get_by_role("link", name="/openapi.json").click()
    page.wait_for_url("**/openapi.json")
