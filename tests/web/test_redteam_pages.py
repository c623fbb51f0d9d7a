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
