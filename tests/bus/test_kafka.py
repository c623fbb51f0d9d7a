"""The conformance cases that exist only on Kafka: offsets, consumer groups, raw bytes on
the wire, and the broker itself going away. The in-process bus has none of these: it has
no offsets to commit (publishing awaits the handlers; its crash case is the relay's, in
test_conformance.py), no consumer groups (one process is the only replica), carries
Envelope objects rather than bytes, and has no broker to restart."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.kafka import KafkaBus
from app.bus.relay import OutboxRelay
from app.bus.settings import DeliverySettings
from tests.bus.contract import ThingHappened
from tests.bus.support import (
    CONSUMER,
    Counting,
    CrashAfterCommit,
    Transport,
    envelopes,
    events,
    ids,
    processed_ids,
    received_rows,
    recording_consumer,
    unsent,
    write,
)
from tests.bus.test_conformance import all_received, exactly_once
from tests.kafka import Tansu
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_consumer_crash_before_the_offset_commit_redelivers(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A consumer applies its first batch (the inbox transaction commits) and dies before
    committing the offsets. A fresh process of the same group is handed every event again,
    including the ones already applied, and the inbox applies each once."""
    batch = events([f"c{n}" for n in range(6)], 5)
    await write(engine, batch)
    producer = await kafka_transport.running()
    assert await OutboxRelay(CONSUMER, engine, producer, delivery).drain() == 30

    first = CrashAfterCommit(recording_consumer(engine, delivery, replica="first"))
    doomed = await kafka_transport.running(first)
    await asyncio.wait_for(first.crashed.wait(), 15)
    applied = await received_rows(engine)
    assert applied, "the first batch was committed to the database"
    assert {row.event_id for row in applied} == set(first.delivered)
    await doomed.stop()  # the crash: the handler never returned, no offset was committed

    second = Counting(recording_consumer(engine, delivery, replica="second"))
    await kafka_transport.running(second)
    await eventually(
        lambda: set(second.delivered),
        lambda seen: seen >= set(ids(batch)),
        "every event redelivered to the new process",
    )
    rows = await received_rows(engine)
    exactly_once(rows, batch)
    assert set(first.delivered) <= set(second.delivered)  # redelivered, and skipped
    assert {row.event_id for row in rows if row.consumer == "second"} == (
        set(ids(batch)) - set(first.delivered)
    )
    assert await processed_ids(engine) == set(ids(batch))


async def produce_raw(transport: Transport, values: list[bytes], key: bytes) -> None:
    """Write bytes to the event's topic with a plain producer, as anyone with access can."""
    assert transport.kafka is not None
    plain = AIOKafkaProducer(
        bootstrap_servers=transport.kafka.bootstrap_servers, acks="all", enable_idempotence=False
    )
    await plain.start()
    try:
        for value in values:
            await plain.send_and_wait(transport.topic(ThingHappened.type), value=value, key=key)
    finally:
        await plain.stop()


async def test_bytes_that_are_not_an_envelope_are_parked_at_once(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """Anyone can write to a topic: messages that are not envelopes at all (not JSON, not
    UTF-8, JSON of another shape, an empty value) are parked on the first attempt, with
    no event id, and the envelopes around them on the same key flow, in order."""
    inbox = recording_consumer(engine, delivery)
    consumer = Counting(inbox)
    bus = await kafka_transport.running(consumer)
    good = events(["raw"], 6)
    await bus.publish(envelopes(good[:3]))
    junk = [b"not json", b"\xff\xfe", b'{"type": "x"}', b"[]", b""]
    await produce_raw(kafka_transport, junk, key=b"raw")
    await bus.publish(envelopes(good[3:]))

    parked = await eventually(inbox.parked, lambda found: len(found) >= 5, "junk parked")
    exactly_once(await all_received(engine, 6, "the envelopes around the junk"), good)
    assert [row.seq for row in await received_rows(engine)] == list(range(6))
    assert len(parked) == 5
    assert {(entry.event_id, entry.type, entry.attempts) for entry in parked} == {(None, None, 1)}
    assert all("undecodable event" in entry.error for entry in parked)
    assert consumer.raw == 5

    assert await inbox.replay(parked[0].id) is False  # still not an event: stays parked
    assert len(await inbox.parked()) == 5


async def test_a_message_with_a_nul_byte_is_parked_and_blocks_nothing(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A message holding a NUL byte is valid UTF-8 but cannot be stored in a PostgreSQL
    text column. It must still be parked (once) and must not hold up the partition: the
    envelopes after it on the same key are applied."""
    inbox = recording_consumer(engine, delivery)
    bus = await kafka_transport.running(Counting(inbox))
    good = events(["nul"], 4)
    await bus.publish(envelopes(good[:2]))
    await produce_raw(kafka_transport, [b"junk \x00 with a NUL"], key=b"nul")
    await bus.publish(envelopes(good[2:]))

    rows = await all_received(engine, 4, "the envelopes after the NUL message", timeout=10)
    exactly_once(rows, good)
    [entry] = await eventually(inbox.parked, lambda found: len(found) >= 1, "parked", 5)
    assert (entry.event_id, entry.attempts) == (None, 1)


async def test_an_envelope_with_an_event_id_that_is_not_a_string_is_parked(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """Envelope-shaped JSON whose event_id is a number is as undecodable as any junk: it
    is parked at once, and the envelopes after it on the same key are applied."""
    inbox = recording_consumer(engine, delivery)
    bus = await kafka_transport.running(Counting(inbox))
    good = events(["id"], 4)
    await bus.publish(envelopes(good[:2]))
    shaped = (
        Envelope.wrap(good[0])
        .to_bytes()
        .replace(f'"event_id":"{good[0].event_id}"'.encode(), b'"event_id":7')
    )
    assert b'"event_id":7' in shaped
    await produce_raw(kafka_transport, [shaped], key=b"id")
    await bus.publish(envelopes(good[2:]))

    rows = await all_received(engine, 4, "the envelopes after the odd one", timeout=10)
    exactly_once(rows, good)
    [entry] = await eventually(inbox.parked, lambda found: len(found) >= 1, "parked", 5)
    assert (entry.event_id, entry.attempts) == (None, 1)
    assert "undecodable event" in entry.error


async def test_two_processes_of_one_group_share_the_partitions(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """Two replicas of one consuming module (same group, same inbox database), a topic of
    4 partitions, events over 24 keys published in waves while the second replica joins:
    both replicas apply some, every event is applied exactly once overall, and per key in
    order (a partition moves between replicas at a committed offset)."""
    a = Counting(recording_consumer(engine, delivery, replica="a"))
    b = Counting(recording_consumer(engine, delivery, replica="b"))
    bus_a = await kafka_transport.running(a, partitions=4)
    await kafka_transport.running(b, partitions=4)
    relay = OutboxRelay(CONSUMER, engine, bus_a, delivery)
    keys = [f"g{n}" for n in range(24)]

    published: list[ThingHappened] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        wave = events(keys, 2, start=2 * (len(published) // len(keys)))
        await write(engine, wave)
        assert await relay.drain() == len(wave)
        published += wave
        rows = await all_received(engine, len(published), "the waves so far")
        replicas = Counter(row.consumer for row in rows)
        if replicas["a"] and replicas["b"] and len(published) >= 4 * len(keys):
            break
        assert loop.time() < deadline, f"one replica never got a partition: {replicas}"
        await asyncio.sleep(0.2)

    exactly_once(rows, published)
    for key in keys:
        assert [row.seq for row in rows if row.key == key] == sorted(
            event.seq for event in published if event.key == key
        ), key
    assert await processed_ids(engine) == set(ids(published))


async def test_a_broker_restart_loses_nothing(
    kafka_transport: Transport,
    engine: AsyncEngine,
    delivery: DeliverySettings,
    tansu: Tansu,
) -> None:
    """The broker restarts and comes back empty (Tansu keeps nothing: topics, offsets and
    groups are gone) under a running consumer and a running bus. The rows that were
    unsent at the restart are sent afterwards, rows written afterwards flow too: the
    producer and the consumer find their way back (the consumer reads the new log from
    its start, not from the positions it had), and every event is applied once.

    Two things keep this about encurta rather than about Tansu. The relay is paused
    around the restart, so no batch is in flight across it. And the topic is created
    again, as any starting encurta process does (KafkaBus.ensure_topics), before the relay
    resumes: Tansu acknowledges a produce to a topic it no longer has and drops the
    message (a real Kafka broker refuses it), so the running producer's first batch after
    a wipe would be lost by the broker, with the outbox rightly counting it as sent.

    Order per key is not asserted across the wipe: until the consumer notices that its
    group is gone, it may fetch from the positions it had, in the new log, and apply
    later events before it rejoins and reads the earlier ones (the inbox keeps that to
    exactly once)."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await kafka_transport.running(consumer)
    keys = [f"b{n}" for n in range(6)]
    before, pending, after = events(keys, 5), events(keys, 5, 5), events(keys, 5, 10)
    relay = OutboxRelay(CONSUMER, engine, bus, delivery)
    await relay.start()
    try:
        await write(engine, before)
        await all_received(engine, 30, "events before the restart")
    finally:
        await relay.stop()

    await write(engine, pending)
    await asyncio.to_thread(tansu.restart)
    assert await unsent(engine) == 30
    starting = kafka_transport.new_bus()
    assert isinstance(starting, KafkaBus)
    await starting.ensure_topics({ThingHappened.type})

    relay = OutboxRelay(CONSUMER, engine, bus, delivery)
    await relay.start()
    try:
        await write(engine, after)
        rows = await all_received(engine, 90, "every event, across the restart", timeout=30)
        exactly_once(rows, before + pending + after)
        assert await unsent(engine) == 0
    finally:
        await relay.stop()


async def test_a_consumer_stopped_while_joining_leaves_its_group(
    kafka_transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A process stopped while its consumer is still joining the group (a deploy, a crash
    loop, `stop()` during startup) must leave nothing behind: a member that keeps
    heartbeating would be assigned partitions that nobody reads. The next process of
    the group then receives every event."""
    early = Counting(recording_consumer(engine, delivery, replica="early"))
    stopped = await kafka_transport.running(early, partitions=4)
    await asyncio.sleep(0.3)  # topics made; the consumer is joining (about 1 s on Tansu)
    await stopped.stop()

    late = Counting(recording_consumer(engine, delivery, replica="late"))
    bus = await kafka_transport.running(late, partitions=4)
    batch = events([f"j{n}" for n in range(16)], 2)
    await bus.publish(envelopes(batch))
    exactly_once(await all_received(engine, 32, "every event, on every partition", 10), batch)
    assert early.delivered == []
