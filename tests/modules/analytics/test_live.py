"""A link's live clicks (`GET /api/stats/{code}/live`): the owner's stream sees a click soon
after the redirect, nobody else gets a stream, a client that goes frees its place, and a
client that reads too slowly holds a bounded queue.

httpx's ASGI transport reads a response whole, which a stream never is: `open_stream`
drives the app as a server would, one ASGI call, and hands over the body as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx

from app.contracts.shortener import LinkClicked
from app.modules.analytics.live import LiveClicks, describe_click
from tests.conftest import runtime_of
from tests.modules.analytics.helpers import CHROME_WINDOWS, click
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem
from tests.support.waiting import eventually

ACCEPTANCE = 2.0  # seconds from the redirect to the click on the stream, the bar


class OpenStream:
    """The response of one ASGI call, read as it is sent; `close()` is the client going."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.started = asyncio.Event()
        self.chunks: asyncio.Queue[str] = asyncio.Queue()
        self.gone = asyncio.Event()
        self._buffer = ""

    async def receive(self) -> dict[str, Any]:
        if not hasattr(self, "_asked") and not self.gone.is_set():
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(0)  # a socket write: the disconnect may be heard meanwhile
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            self.started.set()
        elif message["type"] == "http.response.body":
            await self.chunks.put(message.get("body", b"").decode())

    async def event(self, timeout: float) -> tuple[str, str]:
        """The next block of the stream that is not a comment: (field name, value) of its
        first line, and the whole block when it is an event."""
        async with asyncio.timeout(timeout):
            while True:
                while "\n\n" not in self._buffer:
                    self._buffer += await self.chunks.get()
                block, self._buffer = self._buffer.split("\n\n", 1)
                if block.startswith(":"):
                    continue
                name, _, value = block.partition(": ")
                return name, value


def request(path: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The ASGI scope of a GET as uvicorn makes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"encurta.test")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.7", 40000),
        "server": ("encurta.test", 80),
        "state": {},
    }


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, path: str, headers: Mapping[str, str]
) -> AsyncIterator[OpenStream]:
    app = client._transport.app  # type: ignore[attr-defined]
    stream = OpenStream()
    call = asyncio.create_task(app(request(path, headers), stream.receive, stream.send))
    try:
        async with asyncio.timeout(10):
            await stream.started.wait()
        yield stream
    finally:
        stream.gone.set()
        async with asyncio.timeout(10):
            await call


def hub_of(client: httpx.AsyncClient) -> LiveClicks:
    broadcast = next(b for b in runtime_of(client).broadcasts if b.name.startswith("analytics"))
    handler = broadcast._handlers[LinkClicked.type]  # a bound method of the hub
    hub = handler.__self__  # type: ignore[attr-defined]
    assert isinstance(hub, LiveClicks)
    return hub


async def known_link(client: httpx.AsyncClient, owner: Account) -> str:
    """A link of `owner`'s, once analytics has heard of it."""
    code: str = (await shorten(client, owner, "https://example.com/live"))["code"]
    await eventually(
        lambda: client.get(f"/api/stats/{code}", headers=owner.headers),
        lambda response: response.status_code == 200,
        "analytics knows the link",
    )
    return code


async def test_the_owner_sees_a_click_on_the_stream_within_two_seconds(
    client: httpx.AsyncClient, owner: Account
) -> None:
    code = await known_link(client, owner)

    async with open_stream(client, f"/api/stats/{code}/live", owner.headers) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        assert await stream.event(10) == ("retry", "3000")  # subscribed from here on
        clicked = time.monotonic()
        redirect = await client.get(
            f"/{code}",
            headers={"User-Agent": CHROME_WINDOWS, "Referer": "https://news.example.org/a"},
        )
        assert redirect.status_code == 302
        name, value = await stream.event(ACCEPTANCE)
        print(f"click on the stream {time.monotonic() - clicked:.3f} s after the redirect")

    assert name == "event"
    kind, data = value.split("\ndata: ")
    assert kind == "click"
    seen = json.loads(data)
    assert set(seen) == {"at", "country", "device", "browser", "referer_host", "bot"}
    assert seen["browser"] == "Chrome"
    assert seen["device"] == "desktop"
    assert seen["referer_host"] == "news.example.org"
    assert seen["bot"] is False
    assert "203.0.113" not in data and "Mozilla" not in data


async def test_the_links_path_redirects_to_the_stream(client: httpx.AsyncClient) -> None:
    moved = await client.get("/api/links/any-code/live")
    impossible = await client.get("/api/links/no%20pe/live")

    assert moved.status_code == 307
    assert moved.headers["location"] == "/api/stats/any-code/live"
    assert_problem(impossible, 404)


async def test_only_the_owner_gets_a_stream(client: httpx.AsyncClient, owner: Account) -> None:
    code = await known_link(client, owner)
    other = await new_account(client, "other@example.com")

    theirs = await client.get(f"/api/stats/{code}/live", headers=other.headers)
    unknown = await client.get("/api/stats/nope/live", headers=owner.headers)
    impossible = await client.get("/api/stats/no%20pe/live", headers=owner.headers)
    anonymous = await client.get(f"/api/stats/{code}/live")

    assert assert_problem(theirs, 404) == assert_problem(unknown, 404)
    assert_problem(impossible, 404)
    assert_problem(anonymous, 401)
    assert hub_of(client).streams() == 0


async def test_a_client_that_goes_frees_its_stream(
    client: httpx.AsyncClient, owner: Account
) -> None:
    code = await known_link(client, owner)
    hub = hub_of(client)

    async with open_stream(client, f"/api/stats/{code}/live", owner.headers) as stream:
        await stream.event(10)
        assert hub.streams(code) == 1

    assert hub.streams(code) == 0 and hub.streams() == 0


async def test_a_client_gone_before_the_body_began_frees_its_stream(
    client: httpx.AsyncClient, owner: Account
) -> None:
    code = await known_link(client, owner)
    app = client._transport.app  # type: ignore[attr-defined]
    stream = OpenStream()
    stream.gone.set()  # the disconnect is there as soon as the response listens for it

    async with asyncio.timeout(10):
        await app(request(f"/api/stats/{code}/live", owner.headers), stream.receive, stream.send)

    assert hub_of(client).streams() == 0


async def test_deleting_the_link_ends_its_streams(
    client: httpx.AsyncClient, owner: Account
) -> None:
    code = await known_link(client, owner)
    hub = hub_of(client)

    async with open_stream(client, f"/api/stats/{code}/live", owner.headers) as stream:
        await stream.event(10)
        assert (await client.delete(f"/api/links/{code}", headers=owner.headers)).is_success
        await eventually(lambda: hub.streams(code) == 0, what="the stream ended")


async def test_a_slow_client_holds_a_bounded_queue_and_learns_what_it_missed() -> None:
    hub = LiveClicks(queue_length=5)
    stream = hub.open("code", uuid4())
    body = hub.events(stream)
    assert await anext(body) == "retry: 3000\n\n"

    await hub.heard_clicks(
        [click("code", datetime(2026, 3, 2, 0, i, tzinfo=UTC)) for i in range(12)]
    )
    await hub.heard_clicks([click("other-code")])  # nobody watches it: nothing kept

    assert len(stream.pending) == 5 and stream.missed == 7
    assert await anext(body) == 'event: missed\ndata: {"clicks":7}\n\n'
    first = json.loads((await anext(body)).split("data: ")[1])
    assert first["at"] == "2026-03-02T00:07:00+00:00"  # the oldest five went
    await body.aclose()
    assert hub.streams() == 0


async def test_a_process_holds_a_bounded_number_of_streams(
    client: httpx.AsyncClient, owner: Account
) -> None:
    code = await known_link(client, owner)
    hub = hub_of(client)
    hub.max_streams = 1

    async with open_stream(client, f"/api/stats/{code}/live", owner.headers) as stream:
        await stream.event(10)
        busy = await client.get(f"/api/stats/{code}/live", headers=owner.headers)

    assert_problem(busy, 503)
    assert hub.streams() == 0


def test_a_click_shows_no_ip_network_visitor_or_user_agent() -> None:
    shown = describe_click(click("code", country=None, user_agent=None, is_bot=True))

    assert shown == {
        "at": "2026-03-02T00:00:00+00:00",
        "country": "unknown",
        "device": "bot",
        "browser": "unknown",
        "referer_host": "direct",
        "bot": True,
    }
