"""The edge makes a click's outbox row by hand; the row must be a `link_clicked` event
exactly as the contract reads it, with privacy decided here (no raw IP in it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from app.contracts.shortener import LinkClicked
from app.modules.shortener.edge import Edge, Geo
from app.modules.shortener.visitors import VisitorKeys

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    keys = VisitorKeys(lambda: b"s" * 32)
    await keys.start()
    yield Edge(Geo(None), keys, trusted_proxies=[])
    await keys.stop()


def scope(*headers: tuple[bytes, bytes], client: str = "81.2.69.142") -> dict[str, object]:
    return {"type": "http", "method": "GET", "headers": list(headers), "client": (client, 5)}


async def test_the_row_is_a_link_clicked_event_the_contract_accepts(edge: Edge) -> None:
    before = datetime.now(UTC)
    row = edge.click(
        scope((b"user-agent", CHROME.encode()), (b"referer", b"https://news.example/a")),
        "abc123",
    )

    event = LinkClicked.model_validate_json(row.payload)
    assert (row.type, row.key, row.event_id) == (LinkClicked.type, "abc123", event.event_id)
    assert event.click_id == event.event_id
    assert before <= event.occurred_at == row.occurred_at <= datetime.now(UTC)
    assert event.code == "abc123"
    assert event.ip_anonymized == "81.2.69.0"
    assert "81.2.69.142" not in row.payload
    assert event.user_agent == CHROME
    assert event.referer == "https://news.example/a"
    assert (event.is_bot, event.bot_reason) == (False, None)
    assert len(event.visitor_hash) >= 32
    assert event.metadata == {}


async def test_a_crawler_and_a_missing_header_are_said_as_the_contract_says(edge: Edge) -> None:
    crawler = LinkClicked.model_validate_json(
        edge.click(
            scope((b"user-agent", b"Googlebot/2.1 (+http://www.google.com/bot.html)")), "c"
        ).payload
    )
    bare = LinkClicked.model_validate_json(edge.click(scope(), "c").payload)

    assert crawler.is_bot and crawler.bot_reason
    assert (bare.user_agent, bare.referer, bare.is_bot) == (None, None, True)


async def test_the_first_of_a_repeated_header_counts(edge: Edge) -> None:
    row = edge.click(scope((b"user-agent", CHROME.encode()), (b"user-agent", b"curl/8")), "c")

    assert LinkClicked.model_validate_json(row.payload).user_agent == CHROME


async def test_a_nul_byte_never_reaches_the_stored_json(edge: Edge) -> None:
    """jsonb refuses \\u0000: one in a payload would fail its whole group's write for good."""
    row = edge.click(scope((b"user-agent", b"a\x00b"), (b"referer", b"https://x/\x00")), "c")

    assert "\\u0000" not in row.payload
    event = LinkClicked.model_validate_json(row.payload)
    assert (event.user_agent, event.referer) == ("ab", "https://x/")
