"""The redirect's express lane (Redirector.express, served by the kernel's protocol): the
same answers as the ASGI redirect, its click recorded the same way; a cached live link at
once, or once its click committed, anything else once looked up. Called here as the
protocol calls it, with the scope the ASGI app would get."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import httpx
import pytest

from app.kernel.express import Express, ExpressResponse
from app.kernel.front import FrontedStarlette
from tests.conftest import AppFactory
from tests.modules.shortener.helpers import CHROME, CLICKED, ShortenerDb, follow
from tests.support.accounts import new_account, shorten


@pytest.fixture
def settings(settings: Any) -> Any:
    """Clicks kept in the outbox once sent, where these tests read them (see test_redirect)."""
    return settings.model_copy(update={"bus": settings.bus.model_copy(update={"handoff_limit": 0})})


def express(
    client: httpx.AsyncClient, path: str, method: str = "GET", query: bytes = b""
) -> Express | None:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FrontedStarlette) and app.express is not None
    scope = {
        "type": "http",
        "method": method,
        "path": urllib.parse.unquote(path),  # as the server's protocol decodes it
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"encurta.test"), (b"user-agent", CHROME.encode())],
        "client": ("198.51.100.23", 40000),
    }
    return app.express(scope)


async def answered(
    client: httpx.AsyncClient, path: str, method: str = "GET", query: bytes = b""
) -> ExpressResponse:
    answer = express(client, path, method, query)
    assert answer is not None
    return answer if isinstance(answer, ExpressResponse) else await answer


def head_of(response: ExpressResponse) -> tuple[str, dict[str, str]]:
    status, *lines = response.head.decode().removesuffix("\r\n").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines)


async def clicked(database_urls: dict[str, str]) -> list[dict[str, Any]]:
    return [row["payload"] for row in await ShortenerDb(database_urls).outbox(CLICKED)]


async def test_a_cached_link_gets_the_asgi_redirects_head_once_its_click_committed(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account, "https://example.com/landing?utm=x")
    asgi = await follow(client, link["code"])  # fills the cache

    answer = express(client, f"/{link['code']}")

    assert isinstance(answer, asyncio.Future)  # waits for the click's commit
    response = await answer
    status, headers = head_of(response)
    assert status == "HTTP/1.1 302 Found"
    assert headers == {
        name: asgi.headers[name] for name in ("location", "cache-control", "content-length")
    }
    assert response.body == b""
    stored = await clicked(database_urls)
    assert len(stored) == 2
    assert stored[1]["code"] == link["code"]
    assert stored[1]["user_agent"] == CHROME
    assert stored[1]["ip_anonymized"] == "198.51.100.0"


async def test_a_link_not_cached_is_looked_up_then_redirected_and_counted(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account, "https://example.com/fresh")

    response = await answered(client, f"/{link['code']}")

    assert head_of(response)[1]["location"] == "https://example.com/fresh"
    assert len(await clicked(database_urls)) == 1


async def test_the_status_line_follows_the_redirect_status_setting(
    app_client: AppFactory, settings: Any
) -> None:
    shortener = settings.shortener.model_copy(update={"redirect_status": 308})
    async with app_client(shortener=shortener) as client:
        account = await new_account(client)
        link = await shorten(client, account)

        response = await answered(client, f"/{link['code']}")

        assert head_of(response)[0] == "HTTP/1.1 308 Permanent Redirect"


async def test_a_head_request_is_answered_at_once_but_not_a_click(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    link = await shorten(client, account)
    await client.head(f"/{link['code']}")  # fills the cache

    answer = express(client, f"/{link['code']}", method="HEAD")

    assert isinstance(answer, ExpressResponse)
    assert head_of(answer)[0] == "HTTP/1.1 302 Found"
    assert await clicked(database_urls) == []


async def test_unknown_and_deleted_links_get_the_asgi_problems_and_no_click(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    account = await new_account(client)
    deleted = await shorten(client, account)
    await client.delete(f"/api/links/{deleted['code']}", headers=account.headers)

    for path, status in [("/NoSuchCode", 404), (f"/{deleted['code']}", 410), ("/a%00b", 404)]:
        asgi = await client.get(path)
        response = await answered(client, path)

        line, headers = head_of(response)
        assert line.startswith(f"HTTP/1.1 {status} ")
        assert headers["content-type"] == asgi.headers["content-type"]
        assert int(headers["content-length"]) == len(response.body)
        assert json.loads(response.body) == asgi.json()
    assert await clicked(database_urls) == []


async def test_paths_of_other_routes_are_left_to_asgi(client: httpx.AsyncClient) -> None:
    for path in ["/healthz", "/openapi.json", "/api/links", "/abc/def", "/"]:
        assert express(client, path) is None, path


async def test_links_not_valid_yet_or_forwarding_the_query_answer_as_through_asgi(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, "https://example.com/p?a=1#top", code="fwd", forward_query=True)
    await shorten(client, ana, code="soon", valid_from="2999-01-01T00:00:00Z")
    await follow(client, "fwd")  # cached now

    for _ in range(2):  # cached, then the express lane's own cache hit
        status, headers = head_of(await answered(client, "/fwd", query=b"b=2&c=\xc3\xa9"))
        assert status.endswith(" 302 Found")
        assert headers["location"] == "https://example.com/p?a=1&b=2&c=%C3%A9#top"
    status, _ = head_of(await answered(client, "/soon"))
    assert status.endswith(" 404 Not Found")
