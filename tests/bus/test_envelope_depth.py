"""A Kafka message that orjson reads (1024 levels of nesting) but cannot write again (255)
is parked at once as its bytes: were it decoded, parking it would fail, deliver() would
raise, and the Kafka consumer would seek back and retry the batch forever."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from app.bus.envelope import Envelope
from tests.conftest import consumer_of


def _message(depth: int) -> bytes:
    event_id = str(uuid.uuid4())
    head = {"event_id": event_id, "type": "shortener.link_clicked.v1", "key": "abc"}
    head |= {"occurred_at": "2026-03-02T00:00:00+00:00"}
    payload = json.dumps({"event_id": event_id, "code": "abc"})[:-1]
    nested = "[" * depth + "]" * depth
    return (json.dumps(head)[:-1] + f', "payload": {payload}, "metadata": {nested}}}}}').encode()


async def test_a_deeply_nested_message_is_parked_not_retried_forever(
    client: httpx.AsyncClient,
) -> None:
    consumer = consumer_of(client, "analytics")
    data = _message(300)
    with pytest.raises(ValueError, match="undecodable"):
        Envelope.from_bytes(data)
    await consumer.deliver_raw(data)  # the Kafka consumer's path for a record

    parked = await consumer.parked()
    assert [(p.event_id, p.attempts) for p in parked] == [(None, 1)]
