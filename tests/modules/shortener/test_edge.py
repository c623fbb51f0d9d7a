"""The edge makes a click's envelope by hand; it, and the outbox row made of it, must be a
`link_clicked` event exactly as the contract reads it, with privacy decided here (no raw IP
in it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import pytest

from app.bus.envelope import decode
from app.contracts.shortener import LinkClicked
from app.modules.shortener.edge import Edge, Geo
from app.modules.shortener.visitors import VisitorKeys

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


def payload_of(row: bytes) -> LinkClicked:
    event: LinkClicked = LinkClicked.model_validate(json.loads(row)["payload"])
    return event


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
    envelope = edge.click(
        scope((b"user-agent", CHROME.encode()), (b"referer", b"https://news.example/a")),
        "abc123",
    )
    row = envelope.to_bytes()  # what the outbox stores

    stored = json.loads(row)
    event = LinkClicked.model_validate(stored["payload"])
    # What a consumer in this process is handed is the same event.
    assert decode(envelope, {LinkClicked.type: LinkClicked}, "test") == event
    assert (envelope.event_id, envelope.key, envelope.occurred_at) == (
        event.event_id,
        "abc123",
        event.occurred_at,
    )
    assert (stored["type"], stored["key"]) == (LinkClicked.type, "abc123")
    assert UUID(stored["event_id"]) == event.event_id == event.click_id
    occurred_at = datetime.fromisoformat(stored["occurred_at"])
    assert before <= event.occurred_at == occurred_at <= datetime.now(UTC)
    assert event.code == "abc123"
    assert event.ip_anonymized == "81.2.69.0"
    assert b"81.2.69.142" not in row
    assert event.user_agent == CHROME
    assert event.referer == "https://news.example/a"
    assert (event.is_bot, event.bot_reason) == (False, None)
    assert len(event.visitor_hash) >= 32
    assert event.metadata == {}


async def test_a_crawler_and_a_missing_header_are_said_as_the_contract_says(edge: Edge) -> None:
    crawler = payload_of(
        edge.click(
            scope((b"user-agent", b"Googlebot/2.1 (+http://www.google.com/bot.html)")), "c"
        ).to_bytes()
    )
    bare = payload_of(edge.click(scope(), "c").to_bytes())

    assert crawler.is_bot and crawler.bot_reason
    assert (bare.user_agent, bare.referer, bare.is_bot) == (None, None, True)


async def test_the_first_of_a_repeated_header_counts(edge: Edge) -> None:
    row = edge.click(
        scope((b"user-agent", CHROME.encode()), (b"user-agent", b"curl/8")), "c"
    ).to_bytes()

    assert payload_of(row).user_agent == CHROME


async def test_a_nul_byte_never_reaches_the_stored_json(edge: Edge) -> None:
    """jsonb refuses \\u0000: one in a payload would fail its whole group's write for good."""
    row = edge.click(
        scope((b"user-agent", b"a\x00b"), (b"referer", b"https://x/\x00")), "c"
    ).to_bytes()

    assert b"\\u0000" not in row
    event = payload_of(row)
    assert (event.user_agent, event.referer) == ("ab", "https://x/")


async def test_click_ids_are_unique_and_read_as_uuids(edge: Edge) -> None:
    """Made from a per-process prefix and a counter: unique within a process and across
    processes (another Edge stands for another process)."""
    keys = VisitorKeys(lambda: b"s" * 32)
    await keys.start()
    other = Edge(Geo(None), keys, trusted_proxies=[])
    ids = [UUID(json.loads(edge.click(scope(), "c").to_bytes())["event_id"]) for _ in range(1000)]
    elsewhere = UUID(json.loads(other.click(scope(), "c").to_bytes())["event_id"])
    await keys.stop()

    assert len(set(ids)) == 1000
    assert {i.version for i in ids} == {4}
    assert elsewhere not in ids
