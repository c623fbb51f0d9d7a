"""What the bus conformance suite is built from: its scratch tables, real inbox consumers
that record what they applied, subscriber wrappers that count or crash, and polling."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bus.envelope import Envelope
from app.bus.inbox import Consumer, inbox_tables
from app.bus.inprocess import InProcessBus
from app.bus.kafka import KafkaBus
from app.bus.outbox import outbox_table, write_outbox
from app.bus.protocol import Bus, Subscriber
from app.bus.settings import DeliverySettings, KafkaSettings
from tests.bus.contract import ThingHappened

CONSUMER = "bustest"  # the consuming module's name: its Kafka group is PREFIX-bustest

metadata = MetaData()
processed_events, parked_events = inbox_tables(metadata)
outbox = outbox_table(metadata)
received = Table(
    "received",
    metadata,
    # The serial is the order of inserts; received_at is per transaction, so it ties.
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("key", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("consumer", Text, nullable=False),
    Column(
        "received_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.clock_timestamp(),
    ),
)

# Added by the parking tests, dropped by the fixture before each test.
REJECT_13 = "received_rejects_13"


def events(keys: Sequence[str], per_key: int, start: int = 0) -> list[ThingHappened]:
    """`per_key` events for each key, interleaved: k0#0, k1#0, ..., k0#1, k1#1, ..."""
    return [
        ThingHappened(key=key, seq=seq) for seq in range(start, start + per_key) for key in keys
    ]


def envelopes(batch: Sequence[ThingHappened]) -> list[Envelope]:
    return [Envelope.wrap(event) for event in batch]


async def write(engine: AsyncEngine, batch: Sequence[ThingHappened]) -> None:
    """Events into the outbox, in one transaction of the producer's database."""
    async with engine.begin() as conn:
        await write_outbox(conn, batch)


def recording_consumer(
    engine: AsyncEngine, delivery: DeliverySettings, replica: str = "main"
) -> Consumer:
    """A real inbox consumer whose handler inserts each event into `received` in the
    consumer's own transaction; `replica` tells which process of the module applied it."""

    async def handle(conn: AsyncConnection, batch: Sequence[ThingHappened]) -> None:
        await conn.execute(
            received.insert(),
            [
                {"event_id": e.event_id, "key": e.key, "seq": e.seq, "consumer": replica}
                for e in batch
            ],
        )

    return Consumer(CONSUMER, engine, {ThingHappened: handle}, delivery)


class Counting:
    """A Subscriber in front of a real Consumer: counts what the transport handed over."""

    def __init__(self, inner: Consumer) -> None:
        self.inner = inner
        self.name = inner.name
        self.delivered: list[UUID] = []  # every envelope handed over, duplicates included
        self.raw = 0

    @property
    def event_types(self) -> list[str]:
        return self.inner.event_types

    async def deliver(self, batch: Sequence[Envelope]) -> None:
        await self.inner.deliver(batch)
        self.delivered.extend(envelope.event_id for envelope in batch)

    async def deliver_raw(self, data: bytes) -> None:
        await self.inner.deliver_raw(data)
        self.raw += 1


class CrashAfterCommit(Counting):
    """Applies the first batch for real (the consumer's transaction commits), then hangs
    like a process that died before it could tell the transport: no offset is committed."""

    def __init__(self, inner: Consumer) -> None:
        super().__init__(inner)
        self.crashed = asyncio.Event()

    async def deliver(self, batch: Sequence[Envelope]) -> None:
        await super().deliver(batch)
        self.crashed.set()
        await asyncio.Event().wait()  # never returns; cancelled when the bus stops


@dataclass
class Transport:
    """Builds buses of one kind; every bus it built is stopped after the test."""

    name: str
    delivery: DeliverySettings
    kafka: KafkaSettings | None = None
    buses: list[Bus] = field(default_factory=list)

    def new_bus(self, **kafka_changes: Any) -> Bus:
        bus: Bus
        if self.kafka is None:
            bus = InProcessBus()
        else:
            bus = KafkaBus(self.kafka.model_copy(update=kafka_changes), self.delivery)
        self.buses.append(bus)
        return bus

    async def running(self, *subscribers: Subscriber, **kafka_changes: Any) -> Bus:
        bus = self.new_bus(**kafka_changes)
        for subscriber in subscribers:
            bus.subscribe(subscriber)
        await bus.start()
        return bus

    def topic(self, event_type: str) -> str:
        assert self.kafka is not None
        return f"{self.kafka.topic_prefix}{event_type}"

    async def close(self) -> None:
        for bus in reversed(self.buses):
            await bus.stop()


T = TypeVar("T")


@dataclass(frozen=True)
class Received:
    event_id: UUID
    key: str
    seq: int
    consumer: str


async def received_rows(engine: AsyncEngine) -> list[Received]:
    """What the handler applied, in the order the rows were inserted."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    received.c.event_id, received.c.key, received.c.seq, received.c.consumer
                ).order_by(received.c.id)
            )
        ).all()
    return [Received(*row) for row in rows]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def unsent(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def processed_ids(engine: AsyncEngine) -> set[UUID]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(processed_events.c.event_id))).scalars())


def ids(batch: Sequence[ThingHappened]) -> list[UUID]:
    return [event.event_id for event in batch]
