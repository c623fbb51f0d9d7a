"""The redirect's express lane (Redirector.express, served by the kernel's protocol): a
cached live link is answered with the same head as the ASGI redirect, its click recorded
the same way; anything else is left to ASGI. Called here as the protocol calls it, with the
scope the ASGI app would get."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.kernel.express import ExpressAnswer
from app.kernel.front import FrontedStarlette
from tests.conftest import AppFactory
from tests.modules.shortener.helpers import CHROME, CLICKED, ShortenerDb, follow
from tests.support.accounts import new_account, shorten


@pytest.fixture
def settings(settings: Any) -> Any:
    """Clicks kept in the outbox once sent, where these tests read them (see test_redirect)."""
    return settings.model_copy(update={"bus": settings.bus.model_copy(update={"handoff_limit": 0})})


def express(client: httpx.AsyncClient, path: str, method: str = "GET") -> ExpressAnswer | None:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FrontedStarlette) and app.express is not None
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"encurta.test"), (b"user-agent", CHROME.encode())],
        "client": ("198.51.100.23", 40000),
    }
    return app.express(scope)


def head_of(answer: ExpressAnswer) -> tuple[str, dict[str, str]]:
    status, *lines = answer.head.decode().removesuffix("\r\n").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines)


async def clicked(database_urls: dict[str, str]) -> list[dict[str, Any]]:
    return [row["payload"] for row in await ShortenerDb(database_urls).outbox(CLICKED)]


async def test_a_cached_link_gets_the_asgi_redirects_head_and_its_click_once_committed(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account, "https://example.com/landing?utm=x")
    asgi = await follow(client, link["code"])  # fills the cache

    answer = express(client, f"/{link['code']}")

    assert answer is not None and answer.after is not None
    status, headers = head_of(answer)
    assert status == "HTTP/1.1 302 Found"
    assert headers == {
        name: asgi.headers[name] for name in ("location", "cache-control", "content-length")
    }
    await answer.after  # the redirect's click committed
    stored = await clicked(database_urls)
    assert len(stored) == 2
    assert stored[1]["code"] == link["code"]
    assert stored[1]["user_agent"] == CHROME
    assert stored[1]["ip_anonymized"] == "198.51.100.0"


async def test_the_status_line_follows_the_redirect_status_setting(
    app_client: AppFactory, settings: Any
) -> None:
    shortener = settings.shortener.model_copy(update={"redirect_status": 308})
    async with app_client(shortener=shortener) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        assert (await client.get(f"/{link['code']}")).status_code == 308

        answer = express(client, f"/{link['code']}")

        assert answer is not None
        assert head_of(answer)[0] == "HTTP/1.1 308 Permanent Redirect"


async def test_a_head_request_is_answered_but_not_a_click(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account)
    await client.head(f"/{link['code']}")

    answer = express(client, f"/{link['code']}", method="HEAD")

    assert answer is not None and answer.after is None
    assert head_of(answer)[0] == "HTTP/1.1 302 Found"
    assert await clicked(database_urls) == []


async def test_what_the_cache_cannot_answer_is_left_to_asgi(client: httpx.AsyncClient) -> None:
    account = await new_account(client)
    never_followed = await shorten(client, account)
    deleted = await shorten(client, account)
    await follow(client, deleted["code"])
    await client.delete(f"/api/links/{deleted['code']}", headers=account.headers)
    assert (await client.get("/NoSuchCode")).status_code == 404  # cached as "no such code"

    for path in [
        f"/{never_followed['code']}",  # a miss: ASGI looks it up
        f"/{deleted['code']}",  # 410
        "/NoSuchCode",  # 404
        "/healthz",  # a route of its own
        f"/{deleted['code']}/x",  # not one segment
    ]:
        assert express(client, path) is None, path
