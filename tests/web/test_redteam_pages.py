"""What a hostile user tried against the pages, and what each attempt now gets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.kernel.session import REFRESH_COOKIE
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


async def test_two_tabs_renewing_the_session_at_once_keep_it(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = client.cookies.get(REFRESH_COOKIE, path="/auth/")
    assert token is not None

    def tab(refresh: str) -> httpx.AsyncClient:
        cookies = {REFRESH_COOKIE: refresh}
        return httpx.AsyncClient(
            transport=client._transport, base_url=client.base_url, cookies=cookies
        )

    # A browser reopening two tabs of the app after its access token expired: both go
    # through /auth/refresh with the same refresh cookie, at once (or another site opens
    # two windows on /auth/refresh: a sign-out from afar).
    async with tab(token) as first, tab(token) as second:
        answers = await asyncio.gather(
            first.get("/auth/refresh?next=/links"), second.get("/auth/refresh?next=/links")
        )
        winner = first if answers[0].headers["location"] == "/links" else second
        renewed = winner.cookies.get(REFRESH_COOKIE, path="/auth/")
        assert renewed is not None
    async with tab(renewed) as later:
        again = await later.get("/auth/refresh?next=/links", headers=HTML)
    assert again.headers["location"] == "/links"  # the session the winner got still holds


async def test_a_renewal_after_sign_out_is_refused_even_within_the_grace(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    first = client.cookies.get(REFRESH_COOKIE, path="/auth/")
    assert first is not None
    renewed = await client.get("/auth/refresh?next=/links")
    assert renewed.headers["location"] == "/links"
    signed_out = await client.post("/auth/logout", headers=ORIGIN)
    assert signed_out.status_code == 303
    client.cookies.clear()
    client.cookies.set(REFRESH_COOKIE, first, path="/auth/")
    again = await client.get("/auth/refresh?next=/links", headers=HTML)
    assert again.headers["location"].startswith("/login")  # the session is over


async def test_the_api_still_reads_a_second_use_of_a_refresh_token_as_reuse(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    token = client.cookies.get(REFRESH_COOKIE, path="/auth/")
    first = await client.post("/api/auth/refresh", json={"refresh_token": token})
    assert first.status_code == 200
    second = await client.post("/api/auth/refresh", json={"refresh_token": token})
    assert second.status_code == 401  # no grace outside the browser's cookie
    later = await client.post(
        "/api/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )
    assert later.status_code == 401  # the whole session ended


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
