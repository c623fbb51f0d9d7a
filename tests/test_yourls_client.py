"""The bar for the YOURLS API: YOURLS's own Python client (`yourls` on PyPI, 1.2.3) works
against a real `encurta serve`, unchanged, given an encurta API key as its signature."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from yourls import YOURLSAPIError, YOURLSClient, YOURLSHTTPError

from tests.modules.shortener.helpers import CHROME
from tests.support.accounts import PASSWORD, bearer
from tests.test_serve import Server, data_dir

pytestmark = pytest.mark.integration
__all__ = ["data_dir"]  # the fixture, used here by name

T = TypeVar("T")


def until(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def server(data_dir: Path) -> Iterator[Server]:
    running = Server(data_dir)
    try:
        running.wait_ready()
        yield running
    finally:
        running.interrupt()


def api_key(server: Server) -> str:
    """A user's key with the scopes the YOURLS API needs, once the shortener admits it."""
    account = {"email": "ana@example.com", "password": PASSWORD}
    assert httpx.post(f"{server.url}/api/auth/register", json=account).status_code == 201
    token = httpx.post(f"{server.url}/api/auth/login", json=account).json()["access_token"]
    made = httpx.post(
        f"{server.url}/api/keys",
        json={"name": "yourls", "scopes": ["links:read", "links:write"]},
        headers=bearer(token),
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    admitted = until(
        lambda: httpx.get(f"{server.url}/api/links", headers={"X-Api-Key": key}).status_code,
        lambda status: status == 200,
    )
    assert admitted == 200
    return key


def test_the_yourls_client_works_against_encurta(server: Server) -> None:
    client = YOURLSClient(f"{server.url}/yourls-api.php", signature=api_key(server))

    made = client.shorten("https://example.com/guide", keyword="guide", title="The guide")
    client.shorten("https://example.com/blog")

    assert made.shorturl == f"{server.url}/guide" and made.keyword == "guide"
    assert made.url == "https://example.com/guide" and made.title == "The guide"
    assert client.expand("guide") == "https://example.com/guide"
    assert client.expand(f"{server.url}/guide") == "https://example.com/guide"
    clicked = httpx.get(f"{server.url}/guide", headers={"User-Agent": CHROME})
    assert clicked.status_code == 302
    stats = until(lambda: client.url_stats("guide"), lambda link: link.clicks == 1)
    assert stats.clicks == 1 and stats.url == "https://example.com/guide"
    assert stats.shorturl == f"{server.url}/guide"
    links, totals = client.stats(filter="top", limit=2)
    assert len(links) == 2 and links[0].shorturl == f"{server.url}/guide"
    assert (totals.total_links, totals.total_clicks) == (2, 1)
    db = client.db_stats()
    assert (db.total_links, db.total_clicks) == (2, 1)

    # A taken keyword: YOURLS 1.9+ answers it with HTTP 400, which this client (written for
    # the 200 of earlier YOURLS) raises as its YOURLSHTTPError, the body YOURLS's answer.
    with pytest.raises(YOURLSHTTPError) as taken:
        client.shorten("https://example.com/other", keyword="guide")
    assert isinstance(taken.value, YOURLSAPIError)
    assert taken.value.response.json()["code"] == "error:keyword"
    assert taken.value.response.json()["message"] == (
        "Short URL guide already exists in database or is reserved"
    )
    with pytest.raises(YOURLSHTTPError, match="not found"):
        client.expand("nothing")
    with pytest.raises(YOURLSHTTPError, match="Please log in"):
        YOURLSClient(f"{server.url}/yourls-api.php", signature="enc_nope").db_stats()
