"""The hand-off (app/bus/handoff.py), on both transports: rows a hot writer leased to the
running relay as it wrote them are published from memory once committed; a row whose
hand-over a crash prevented is sent once its lease expires; a relay that stops gives the
rows handed to it back. In every case each event is applied exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.handoff import HandOff, Lease
from app.bus.outbox import INSERT_ROWS, OutboxRow, rows_document
from app.bus.relay import OutboxRelay
from app.bus.settings import DeliverySettings
from app.kernel.database import driver_connection
from tests.bus.contract import ThingHappened
from tests.bus.support import (
    CONSUMER,
    Counting,
    Transport,
    envelopes,
    events,
    ids,
    received_rows,
    recording_consumer,
    scalar,
    unsent,
)
from tests.bus.test_conformance import all_received, exactly_once
from tests.support.waiting import eventually

# No poll and no NOTIFY within a test: what reaches the consumer was handed over.
NEVER_POLLED = {"relay_poll_seconds": 3600.0}


async def write_leased(
    engine: AsyncEngine, batch: Sequence[ThingHappened], lease: Lease | None
) -> tuple[list[int], list[Envelope]]:
    """What a hot writer does: the rows inserted under `lease`, committed; their ids and
    envelopes."""
    wrapped = envelopes(batch)
    relay, seconds = (lease.relay, lease.seconds) if lease is not None else (None, None)
    async with driver_connection(engine) as driver:
        inserted = await driver.fetch(
            f"WITH inserted AS ({INSERT_ROWS}) SELECT id FROM inserted ORDER BY id",  # noqa: S608
            rows_document([OutboxRow(envelope.to_bytes()) for envelope in wrapped]),
            relay,
            seconds,
        )
    return [row["id"] for row in inserted], wrapped


async def leased_to(engine: AsyncEngine, relay: OutboxRelay) -> int:
    return int(
        await scalar(
            engine,
            "SELECT count(*) FROM outbox WHERE claimed_by = :relay AND claimed_until > now()",
            relay=relay.id,
        )
    )


async def test_rows_handed_over_are_published_from_memory(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """Rows written under the running relay's lease and handed over reach the consumer
    with no claim (no poll is due, no NOTIFY was sent, and a claim skips leased rows), and
    are deleted once sent; a row written unleased is claimed, and kept."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    handoff = HandOff(limit=1000)
    relay = OutboxRelay(
        CONSUMER, engine, bus, delivery.model_copy(update=NEVER_POLLED), handoff=handoff
    )
    await relay.start()
    try:
        batch = events(["h1", "h2", "h3"], 10)
        for part in (batch[:12], batch[12:]):
            lease = handoff.lease(ThingHappened.type)
            assert lease is not None and lease.relay == relay.id
            handoff.committed(lease, *await write_leased(engine, part, lease))
        exactly_once(await all_received(engine, 30, "the rows handed over"), batch)
        for key in ("h1", "h2", "h3"):
            received = [row.seq for row in await received_rows(engine) if row.key == key]
            assert received == list(range(10)), key
        await eventually(
            lambda: scalar(engine, "SELECT count(*) FROM outbox"),
            lambda rows: rows == 0,
            "the rows handed over deleted once sent",
        )
    finally:
        await relay.stop()

    kept = events(["k"], 1)
    await write_leased(engine, kept, None)
    assert await relay.drain() == 1
    assert await scalar(engine, "SELECT attempts FROM outbox WHERE sent_at IS NOT NULL") == 1


async def test_rows_written_unleased_are_polled_for_while_rows_are_handed_over(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """The poll is what guarantees a row with no NOTIFY (or a lost one, or one leased to a
    relay that died) is sent: it must come round on time even while hand-overs wake the
    relay without a pause. Here they go on until the quiet row is sent."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    handoff = HandOff(limit=100_000)
    relay = OutboxRelay(
        CONSUMER,
        engine,
        bus,
        delivery.model_copy(update={"relay_poll_seconds": 0.3, "relay_coalesce_seconds": 0}),
        handoff=handoff,
    )
    await relay.start()
    handed: list[ThingHappened] = []
    quiet_sent = asyncio.Event()

    async def hand_over_without_a_pause() -> None:
        while not quiet_sent.is_set():
            event = ThingHappened(key=f"s{len(handed)}", seq=0)
            lease = handoff.lease(ThingHappened.type)
            assert lease is not None
            handoff.committed(lease, *await write_leased(engine, [event], lease))
            handed.append(event)

    handing = asyncio.create_task(hand_over_without_a_pause())
    try:
        await all_received(engine, 20, "the first rows handed over")  # the relay is going
        quiet = events(["quiet"], 1)
        await write_leased(engine, quiet, None)  # no NOTIFY: only the poll finds it
        handed_before = len(handed)
        await eventually(
            lambda: scalar(
                engine,
                "SELECT count(*) FROM outbox WHERE event_id = :id AND sent_at IS NOT NULL",
                id=quiet[0].event_id,
            ),
            lambda sent: sent == 1,
            "the quiet row, sent by a poll while rows were being handed over",
        )
        assert len(handed) > handed_before, "no hand-over woke the relay meanwhile"
        quiet_sent.set()
        await handing
        everything = [*handed, *quiet]
        exactly_once(await all_received(engine, len(everything), "every row"), everything)
    finally:
        quiet_sent.set()
        await asyncio.wait([handing])
        await relay.stop()


class Stuck:
    """A bus whose publish never returns: the relay holds the batch when it is stopped."""

    def __init__(self) -> None:
        self.taken = asyncio.Event()

    async def publish(self, batch: Sequence[Envelope]) -> None:
        self.taken.set()
        await asyncio.Event().wait()


async def test_rows_never_handed_over_are_sent_once_their_lease_expires(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """The writer committed rows under a relay's lease and the process died before it
    handed them over: another relay leaves them alone while the lease holds, then sends
    them, once each."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    lease_seconds = 3.0
    handoff = HandOff(limit=1000)
    dead = OutboxRelay(
        CONSUMER, engine, Stuck(), delivery, lease_seconds=lease_seconds, handoff=handoff
    )
    handoff.open(Lease(dead.id, lease_seconds), None, lambda: None)  # started, then killed
    batch = events(["d1", "d2"], 6)
    await write_leased(engine, batch, handoff.lease(ThingHappened.type))
    assert await leased_to(engine, dead) == 12

    successor = OutboxRelay(CONSUMER, engine, bus, delivery)
    assert await successor.drain() == 0, "rows under a live lease were claimed"
    sent = 0
    async with asyncio.timeout(lease_seconds + 30):  # a guard: the loop ends when all went
        while sent < 12:
            sent += await successor.drain()
            await asyncio.sleep(0.2)
    exactly_once(await all_received(engine, 12, "the rows, after the lease"), batch)
    assert await unsent(engine) == 0


async def test_a_stopped_relay_gives_back_the_rows_handed_to_it(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A relay stopped while it holds rows handed over (its publish cut short) gives
    their lease back, and rows written after it stopped are not leased: the final drain
    sends them all at once."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    stuck = Stuck()
    handoff = HandOff(limit=1000)
    relay = OutboxRelay(CONSUMER, engine, stuck, delivery, lease_seconds=3600, handoff=handoff)
    await relay.start()
    batch = events(["s1", "s2"], 5)
    lease = handoff.lease(ThingHappened.type)
    assert lease is not None
    handoff.committed(lease, *await write_leased(engine, batch[:6], lease))
    try:
        await asyncio.wait_for(stuck.taken.wait(), 15)
    finally:
        await relay.stop()
    assert handoff.lease(ThingHappened.type) is None
    await write_leased(engine, batch[6:], handoff.lease(ThingHappened.type))
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL") == 0

    assert await OutboxRelay(CONSUMER, engine, bus, delivery).drain() == 10
    exactly_once(await all_received(engine, 10, "all received"), batch)
    assert set(consumer.delivered) == set(ids(batch))


def test_a_lease_is_given_only_while_the_relay_can_take_the_rows() -> None:
    handoff = HandOff(limit=3)
    assert handoff.lease(ThingHappened.type) is None, "no relay runs yet"
    lease = Lease(uuid4(), 30.0)
    woken: list[bool] = []
    handoff.open(lease, [ThingHappened.type], lambda: woken.append(True))
    assert handoff.lease(ThingHappened.type) == lease
    assert handoff.lease("some.other_event.v1") is None, "the relay does not publish it"

    handed = envelopes(events(["u"], 3))
    handoff.committed(lease, [1, 2, 3], handed)
    assert woken == [True]
    assert handoff.lease(ThingHappened.type) is None, "the relay holds as many as it may"
    assert handoff.take(2) == ([1, 2], handed[:2])
    assert handoff.lease(ThingHappened.type) == lease

    handoff.committed(Lease(uuid4(), 30.0), [4], handed[:1])
    assert len(handoff) == 1, "rows under another relay's lease are not this one's"
    handoff.close()
    assert handoff.lease(ThingHappened.type) is None and len(handoff) == 0
    off = HandOff(limit=0)
    off.open(lease, None, lambda: None)
    assert off.lease(ThingHappened.type) is None, "a limit of 0 turns it off"


def test_rows_that_waited_half_their_lease_are_let_go_to_be_claimed_once() -> None:
    """Their lease is not renewed while they wait: taken after it expired, they would be
    sent by the relay and by a claim too."""
    now = [0.0]
    handoff = HandOff(limit=100, clock=lambda: now[0])
    lease = Lease(uuid4(), 30.0)
    handoff.open(lease, None, lambda: None)
    handed = envelopes(events(["old", "new"], 2))
    handoff.committed(lease, [1, 2], handed[:2])
    now[0] = 10.0
    handoff.committed(lease, [3, 4], handed[2:])

    now[0] = 14.9
    assert handoff.take(1) == ([1], handed[:1]), "within half the lease: taken"
    now[0] = 15.0
    assert handoff.take(10) == ([3, 4], handed[2:]), "row 2 waited half its lease: let go"
    assert len(handoff) == 0
