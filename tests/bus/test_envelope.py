"""The envelope carries an event's fields as a dict or as the JSON text the outbox stores;
both reach the wire, and the contract, the same."""

from __future__ import annotations

import json

import pytest

from app.bus.envelope import Envelope, Undecodable, decode
from tests.bus.contract import ThingHappened

CONTRACTS = {ThingHappened.type: ThingHappened}


def both_forms(event: ThingHappened) -> tuple[Envelope, Envelope]:
    wrapped = Envelope.wrap(event)
    stored = Envelope(
        event_id=wrapped.event_id,
        type=wrapped.type,
        occurred_at=wrapped.occurred_at,
        key=wrapped.key,
        payload=event.model_dump_json(),
    )
    return wrapped, stored


def test_the_stored_text_and_the_dict_give_the_same_bytes_and_event() -> None:
    event = ThingHappened(key="k", seq=7)
    wrapped, stored = both_forms(event)

    assert json.loads(stored.to_bytes()) == json.loads(wrapped.to_bytes())
    assert Envelope.from_bytes(stored.to_bytes()) == wrapped
    assert decode(stored, CONTRACTS, "test") == decode(wrapped, CONTRACTS, "test") == event


@pytest.mark.parametrize("text", ['{"key": "k", "seq": "seven"}', '{"key": "k"', "[]"])
def test_stored_text_that_the_contract_refuses_is_undecodable(text: str) -> None:
    _, stored = both_forms(ThingHappened(key="k", seq=1))
    broken = Envelope(stored.event_id, stored.type, stored.occurred_at, stored.key, text)

    with pytest.raises(Undecodable):
        decode(broken, CONTRACTS, "test")
