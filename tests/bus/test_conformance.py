"""The bus conformance suite: each case runs on the in-process bus and on Kafka (Tansu).

The consumers are real inbox consumers on a real PostgreSQL; the producer side is the
real outbox and relay. What the cases show is what DESIGN.md promises of either transport:
at least once on the wire, exactly once in effect, in order per partition key, and one bad
event never blocks the others.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.bus.protocol import Bus
from app.bus.relay import OutboxRelay, PublishFailed
from app.bus.settings import DeliverySettings
from app.kernel.database import create_engine
from tests.bus.contract import ThingHappened
from tests.bus.support import (
    CONSUMER,
    REJECT_13,
    Counting,
    Received,
    Transport,
    envelopes,
    events,
    ids,
    processed_ids,
    received_rows,
    recording_consumer,
    scalar,
    unsent,
    write,
)
from tests.support.waiting import eventually


def exactly_once(rows: Sequence[Received], batch: Sequence[ThingHappened]) -> None:
    counts = Counter(row.event_id for row in rows)
    assert set(counts) == set(ids(batch)), "an event was lost, or one nobody sent appeared"
    assert [i for i, n in counts.items() if n > 1] == [], "an event was applied twice"


async def all_received(
    engine: AsyncEngine, count: int, what: str, timeout: float = 20.0
) -> list[Received]:
    return await eventually(
        lambda: received_rows(engine), lambda rows: len(rows) >= count, what, timeout
    )


def handed_over(consumer: Counting, batch: Sequence[ThingHappened]) -> int:
    """How many times the least delivered event of `batch` was handed to the consumer
    (at least once on the wire: Kafka may hand an event over more often than it was
    published, after a rebalance or a failed commit)."""
    counts = Counter(consumer.delivered)
    return min(counts[event_id] for event_id in ids(batch))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Watching:
    """The relay's bus, seen from outside: how many outbox rows were still unsent, in
    another connection, at the moment the transport returned from each publish."""

    def __init__(self, bus: Bus, engine: AsyncEngine, batch: Sequence[ThingHappened]) -> None:
        self._bus = bus
        self._engine = engine
        self._batch = batch
        self.unsent_when_taken: list[int] = []
        self.received_when_taken: list[int] = []
        self.open_when_taken: list[list[str]] = []

    async def publish(self, batch: Sequence[Envelope]) -> None:
        await self._bus.publish(batch)
        self.unsent_when_taken.append(await unsent(self._engine))
        self.received_when_taken.append(len(await received_rows(self._engine)))
        self.open_when_taken.append(await open_transactions(self._engine))


async def open_transactions(engine: AsyncEngine) -> list[str]:
    """The other sessions of this database that are inside a transaction, by state."""
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
        return [row.state for row in rows]


async def test_relayed_events_arrive_exactly_once(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """Events written to the outbox in two transactions, relayed in batches of 16, each
    reach the consumer once; a row is marked sent only after the transport returned from
    publishing it (in-process: once the consumer committed it)."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    batch = events([f"k{n}" for n in range(5)], 10)
    await write(engine, batch[:20])
    await write(engine, batch[20:])

    watching = Watching(bus, engine, batch)
    relay = OutboxRelay(
        CONSUMER,
        engine,
        watching,
        delivery.model_copy(  # type: ignore[arg-type]
            update={"relay_batch_size": 16}
        ),
    )
    assert await relay.drain() == 50

    # When the transport returned from each publish, none of that batch was marked sent yet.
    assert watching.unsent_when_taken == [50, 34, 18, 2]
    if transport.name == "inprocess":
        # ... and in-process, "taken" means the consumer had already committed it; and the
        # relay held no transaction open on the producer's database meanwhile (it claims
        # with a lease that commits: nothing was "idle in transaction" while publishing).
        assert watching.received_when_taken == [16, 32, 48, 50]
        assert watching.open_when_taken == [[], [], [], []]
    assert await unsent(engine) == 0
    exactly_once(await all_received(engine, 50, "all relayed events received"), batch)
    assert await processed_ids(engine) == set(ids(batch))


async def test_rows_stay_unsent_until_the_transport_takes_them(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A transport that cannot take a batch (Kafka: no broker; in-process: the consumer's
    database is down, so nothing commits) leaves the rows unsent with the error recorded;
    the next relay pass over a working transport sends them."""
    batch = events(["down"], 6)
    await write(engine, batch)
    nowhere = f"127.0.0.1:{free_port()}"
    dead_engine = create_engine(f"postgresql+asyncpg://nobody:nothing@{nowhere}/nothing")
    try:
        if transport.name == "inprocess":
            broken = await transport.running(recording_consumer(dead_engine, delivery))
        else:
            broken = await transport.running(bootstrap_servers=nowhere)
        with pytest.raises(PublishFailed):
            await OutboxRelay(CONSUMER, engine, broken, delivery).relay_batch()
    finally:
        await dead_engine.dispose()
    assert await unsent(engine) == 6
    assert await scalar(engine, "SELECT min(attempts) FROM outbox") == 1
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE last_error <> ''") == 6
    assert await received_rows(engine) == []

    working = await transport.running(Counting(recording_consumer(engine, delivery)))
    assert await OutboxRelay(CONSUMER, engine, working, delivery).drain() == 6
    assert await unsent(engine) == 0
    exactly_once(await all_received(engine, 6, "the retried rows received"), batch)


class SomethingUndeclared(ThingHappened):
    type: ClassVar[str] = "bustest.something_undeclared.v1"


async def test_a_relay_sends_only_the_types_its_module_publishes(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """`publishes` means something: a relay claims only the declared types. A row of
    another type waits, unclaimed, for a relay that declares it (a newer replica, in a
    rolling deploy), and is sent by that one, once."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    declared = events(["ok"], 3)
    undeclared = SomethingUndeclared(key="ok", seq=99)
    await write(engine, [*declared[:2], undeclared, declared[2]])

    older = OutboxRelay(CONSUMER, engine, bus, delivery, publishes=[ThingHappened])
    assert await older.drain() == 3
    exactly_once(await all_received(engine, 3, "the declared events received"), declared)
    assert await unsent(engine) == 1
    assert await scalar(engine, "SELECT claimed_by FROM outbox WHERE sent_at IS NULL") is None

    newer = OutboxRelay(
        CONSUMER, engine, bus, delivery, publishes=[ThingHappened, SomethingUndeclared]
    )
    assert await newer.drain() == 1
    assert await unsent(engine) == 0


async def test_order_is_kept_per_partition_key(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """200 events over 8 keys, interleaved, written in 4 transactions, relayed in batches
    of 30 and consumed in batches of at most 7 (Kafka): per key, the order of application
    is the order of publication."""
    consumer = Counting(recording_consumer(engine, delivery))
    await transport.running(consumer, max_batch=7)
    keys = [f"key-{n}" for n in range(8)]
    batch = events(keys, 25)
    for start in range(0, 200, 50):
        await write(engine, batch[start : start + 50])
    producer = transport.buses[0]
    relay = OutboxRelay(
        CONSUMER, engine, producer, delivery.model_copy(update={"relay_batch_size": 30})
    )
    assert await relay.drain() == 200

    rows = await all_received(engine, 200, "all 200 events received")
    exactly_once(rows, batch)
    for key in keys:
        assert [row.seq for row in rows if row.key == key] == list(range(25)), key


class DiesAfterPublish:
    """A relay's bus that hands the batch to the real transport, then hangs like a process
    that died before marking the rows sent."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.published = asyncio.Event()

    async def publish(self, batch: Sequence[Envelope]) -> None:
        await self._bus.publish(batch)
        self.published.set()
        await asyncio.Event().wait()


async def test_relay_crash_after_publish_resends_after_the_lease_and_the_inbox_absorbs(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """The relay dies after the transport took a batch but before marking it sent: its
    claim (a lease, committed before publishing) is never given back. While the lease
    holds, another relay leaves the rows alone; once it has expired, that relay sends them
    again. The consumer is handed every event (at least) twice and applies each once."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    batch = events(["r1", "r2", "r3"], 8)
    await write(engine, batch)

    dying = DiesAfterPublish(bus)
    lease = 5.0
    relay = OutboxRelay(
        CONSUMER,
        engine,
        dying,
        delivery,  # type: ignore[arg-type]
        lease_seconds=lease,
    )
    crash = asyncio.create_task(relay.relay_batch())
    try:
        await asyncio.wait_for(dying.published.wait(), 15)
        exactly_once(await all_received(engine, 24, "first delivery"), batch)
    finally:
        crash.cancel()  # the crash: publish never returned, nothing marked or given back
        await asyncio.wait([crash])
    assert await unsent(engine) == 24
    assert await scalar(engine, "SELECT max(attempts) FROM outbox") == 0
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM outbox WHERE claimed_by = :relay AND claimed_until > now()",
            relay=relay.id,
        )
        == 24
    )

    successor = OutboxRelay(CONSUMER, engine, bus, delivery)
    assert await successor.drain() == 0, "rows under a live lease were claimed again"
    await eventually(
        successor.drain,
        lambda sent: sent == 24,
        "the rows sent again once the lease expired",
        timeout=lease + 20,
    )
    await eventually(
        lambda: handed_over(consumer, batch), lambda n: n >= 2, "every event handed over twice"
    )
    exactly_once(await received_rows(engine), batch)
    assert await processed_ids(engine) == set(ids(batch))
    assert await unsent(engine) == 0


async def test_a_stopped_relay_gives_its_lease_back(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A relay stopped in the middle of a publish (the app shutting down) gives its lease
    back, so the final drain, or the next start, sends the rows at once, not after the
    lease; the inbox absorbs the copy the cut-short publish may have delivered."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    batch = events(["s1", "s2"], 5)
    await write(engine, batch)

    dying = DiesAfterPublish(bus)
    relay = OutboxRelay(
        CONSUMER,
        engine,
        dying,
        delivery,  # type: ignore[arg-type]
        lease_seconds=3600,
    )
    await relay.start()
    try:
        await asyncio.wait_for(dying.published.wait(), 15)
    finally:
        await relay.stop()
    assert await unsent(engine) == 10
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL") == 0

    assert await OutboxRelay(CONSUMER, engine, bus, delivery).drain() == 10
    exactly_once(await all_received(engine, 10, "all received"), batch)
    assert await unsent(engine) == 0


async def test_duplicate_deliveries_are_absorbed_by_the_inbox(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """The same envelopes published twice, and five of them twice within one publish:
    the consumer is handed every copy (five events three times, seven twice) and
    applies the 12 events once each."""
    consumer = Counting(recording_consumer(engine, delivery))
    bus = await transport.running(consumer)
    batch = events(["d1", "d2", "d3"], 4)
    wire = envelopes(batch)
    await bus.publish(wire + wire[:5])
    await bus.publish(wire)

    await eventually(
        lambda: handed_over(consumer, batch[:5]),
        lambda n: n >= 3,
        "the first five handed over three times",
    )
    await eventually(
        lambda: handed_over(consumer, batch[5:]), lambda n: n >= 2, "the others handed over twice"
    )
    rows = await received_rows(engine)
    exactly_once(rows, batch)
    assert len(rows) == 12
    assert await processed_ids(engine) == set(ids(batch))


async def test_a_failing_event_is_parked_and_replayed_once(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """A CHECK constraint makes the handler fail for seq 13 only, for real: the other 29
    events are applied, that one is parked with its error after max_attempts. Replaying
    it while the cause is still there fails and counts the attempt; once the constraint
    is gone it is applied once and unparked, and a second replay finds nothing."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            f"ALTER TABLE received ADD CONSTRAINT {REJECT_13} CHECK (seq <> 13)"
        )
    inbox = recording_consumer(engine, delivery)
    bus = await transport.running(Counting(inbox))
    batch = events(["p"], 20) + events(["q"], 10)
    await write(engine, batch)
    assert await OutboxRelay(CONSUMER, engine, bus, delivery).drain() == 30

    poison = next(event for event in batch if event.key == "p" and event.seq == 13)
    parked = await eventually(inbox.parked, lambda found: len(found) >= 1, "parked")
    rows = await all_received(engine, 29, "all but the poison")
    exactly_once(rows, [event for event in batch if event is not poison])
    assert [row.seq for row in rows if row.key == "p"] == [*range(13), *range(14, 20)]
    assert len(parked) == 1
    [entry] = parked
    assert (entry.consumer, entry.event_id, entry.type) == (
        CONSUMER,
        poison.event_id,
        ThingHappened.type,
    )
    assert entry.attempts == delivery.max_attempts
    assert REJECT_13 in entry.error

    assert await inbox.replay(entry.id) is False  # the cause is still there
    [again] = await inbox.parked()
    assert again.attempts == delivery.max_attempts + 1
    assert REJECT_13 in again.error

    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"ALTER TABLE received DROP CONSTRAINT {REJECT_13}")
    assert await inbox.replay(entry.id) is True
    exactly_once(await received_rows(engine), batch)
    assert await inbox.parked() == []
    assert poison.event_id in await processed_ids(engine)
    with pytest.raises(KeyError):
        await inbox.replay(entry.id)
    assert len(await received_rows(engine)) == 30


async def test_an_event_that_does_not_match_its_contract_is_parked_at_once(
    transport: Transport, engine: AsyncEngine, delivery: DeliverySettings
) -> None:
    """An envelope whose payload does not validate against the contract is parked on the
    first attempt (retrying cannot help), and the events around it flow."""
    inbox = recording_consumer(engine, delivery)
    bus = await transport.running(Counting(inbox))
    good = events(["m"], 6)
    bad = Envelope(
        event_id=uuid4(),
        type=ThingHappened.type,
        occurred_at=datetime.now(UTC),
        key="m",
        payload={"key": "m", "seq": "thirteen"},
    )
    await bus.publish([*envelopes(good[:3]), bad, *envelopes(good[3:])])

    parked = await eventually(inbox.parked, lambda found: len(found) >= 1, "parked")
    exactly_once(await all_received(engine, 6, "the good events"), good)
    [entry] = parked
    assert (entry.event_id, entry.type, entry.attempts) == (bad.event_id, ThingHappened.type, 1)
    assert "payload does not match" in entry.error
    assert bad.event_id not in await processed_ids(engine)

    assert await inbox.replay(entry.id) is False  # still undecodable: stays parked
    [again] = await inbox.parked()
    assert again.attempts == 2
