"""What a hostile user tried against the pages, and what each attempt now gets."""

from __future__ import annotations

import httpx
import pytest

from tests.web.test_pages import HTML, ORIGIN, sign_up

pytestmark = pytest.mark.integration


async def test_the_last_day_there_is_as_to_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    created = await client.post(
        "/links", data={"url": "https://example.com/", "code": "far-days"}, headers=ORIGIN
    )
    assert created.status_code == 303
    # The day after 9999-12-31 does not exist: the picker's "end of that day" overflowed.
    page = await client.get("/stats/far-days?from=2026-01-01&to=9999-12-31", headers=HTML)
    assert page.status_code == 422, page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_nul_in_a_form_or_a_query_is_a_400_page_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)  # the first account: an admin, so its pages are open too
    form = {**ORIGIN, **HTML, "Content-Type": "application/x-www-form-urlencoded"}
    posts = {
        "/links": b"url=https%3A%2F%2Fexample.com%2F&title=a%00b",
        "/account/keys": b"name=a%00b&scopes=links%3Aread",
        "/login": b"email=a%00b%40example.com&password=long-enough-password",
    }
    for path, body in posts.items():
        answer = await client.post(path, content=body, headers=form)
        assert answer.status_code == 400, (path, answer.status_code)
        assert "NUL" in answer.text and answer.headers["content-type"].startswith("text/html")
    for path in ("/links?q=a%00b", "/links?tag=a%00b", "/admin/links?q=a%00b"):
        answer = await client.get(path, headers=HTML)
        assert answer.status_code == 400, (path, answer.status_code)
    listed = (await client.get("/api/links")).json()["items"]
    assert listed == []  # nothing half-stored


async def test_a_new_password_and_remove_the_password_at_once_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    made = await client.post(
        "/links",
        data={"url": "https://example.com/", "code": "guarded", "password": "old-secret"},
        headers=ORIGIN,
    )
    assert made.status_code == 303
    both = await client.post(
        "/links/guarded/edit",
        data={"url": "https://example.com/", "password": "new-secret", "remove_password": "on"},
        headers={**ORIGIN, **HTML},
    )
    assert both.status_code == 422
    assert "not both" in both.text
    link = (await client.get("/api/links/guarded")).json()
    assert link["has_password"] is True  # still guarded
