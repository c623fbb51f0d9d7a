"""The Kafka transport (aiokafka): a topic per event type, a consumer group per module.

Publishing returns once Kafka acknowledged every message with acks=all, so the relay marks
outbox rows sent only then. Consuming commits offsets explicitly, per partition, and only
after the module's transaction committed; a crash before that redelivers, and the inbox
absorbs the duplicates. Correctness never rests on Kafka transactions or idempotence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from app.bus.envelope import Envelope
from app.bus.protocol import Subscriber
from app.bus.retry import backoff
from app.bus.settings import DeliverySettings, KafkaSettings

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Offsets are committed right after each applied batch, before the next fetch, so a
    revocation has nothing pending to commit.

    On assignment every partition starts again from the group's committed offset (or the
    beginning when there is none), never from a position remembered in memory: after a
    broker lost its data, or a topic was recreated, a remembered position would skip the
    new messages below it.
    """

    def __init__(self, group: str, consumer: AIOKafkaConsumer) -> None:
        self._group = group
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("kafka %s: revoked %s", self._group, sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("kafka %s: assigned %s", self._group, sorted(map(str, assigned)))
        for partition in assigned:
            committed = await self._consumer.committed(partition)
            if committed is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, committed)


class KafkaBus:
    def __init__(self, settings: KafkaSettings, delivery: DeliverySettings) -> None:
        settings.check_safe()
        self._settings = settings
        self._delivery = delivery
        self._subscribers: list[Subscriber] = []
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._known_topics: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def topic(self, event_type: str) -> str:
        return f"{self._settings.topic_prefix}{event_type}"

    def subscribe(self, subscriber: Subscriber) -> None:
        if any(existing.name == subscriber.name for existing in self._subscribers):
            raise ValueError(f"{subscriber.name} already subscribes")
        self._subscribers.append(subscriber)

    async def start(self) -> None:
        for subscriber in self._subscribers:
            self._tasks.append(
                asyncio.create_task(
                    self._consume_forever(subscriber), name=f"kafka-consumer-{subscriber.name}"
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    # producing

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self.ensure_topics({envelope.type for envelope in envelopes})
        producer = await self._ready_producer()
        try:
            sent = [
                await producer.send(
                    self.topic(envelope.type),
                    value=envelope.to_bytes(),
                    key=envelope.key.encode(),
                )
                for envelope in envelopes
            ]
            await asyncio.gather(*sent)
        except KafkaError:
            # A broker that restarted may have lost topics, and a producer may be wedged:
            # start both afresh; the relay retries the batch.
            self._known_topics.clear()
            await self._drop_producer()
            raise

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._settings.bootstrap_servers,
                    client_id=self._settings.client_id,
                    acks="all",
                    enable_idempotence=self._settings.enable_idempotence,
                    linger_ms=self._settings.linger_ms,
                    request_timeout_ms=self._settings.request_timeout_ms,
                )
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _drop_producer(self) -> None:
        async with self._producer_lock:
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await self._producer.stop()
                self._producer = None

    async def ensure_topics(self, event_types: set[str]) -> None:
        missing = {self.topic(t) for t in event_types} - self._known_topics
        if not missing:
            return
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._settings.client_id}-admin",
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            to_create = [
                NewTopic(name, self._settings.partitions, self._settings.replication_factor)
                for name in sorted(missing - existing)
            ]
            if to_create:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(to_create)
        finally:
            await admin.close()
        self._known_topics |= missing

    # consuming

    async def _consume_forever(self, subscriber: Subscriber) -> None:
        """Recreate the consumer after any fatal error instead of leaving a stuck process."""
        failures = 0
        while True:
            try:
                await self._consume(subscriber)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; the consumer is recreated
                failures += 1
                self._known_topics.clear()  # a broker that lost its topics gets them again
                delay = backoff(
                    failures,
                    self._delivery.backoff_base_seconds,
                    self._delivery.backoff_max_seconds,
                )
                log.warning(
                    "kafka consumer %s: %s; recreating in %.1f s", subscriber.name, exc, delay
                )
                await asyncio.sleep(delay)

    async def _consume(self, subscriber: Subscriber) -> None:
        await self.ensure_topics(set(subscriber.event_types))
        group = f"{self._settings.group_prefix}-{subscriber.name}"
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._settings.client_id}-{subscriber.name}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        consumer.subscribe(
            topics=[self.topic(t) for t in subscriber.event_types],
            listener=_Rebalance(group, consumer),
        )
        try:
            # Inside the try: a consumer stopped while still joining must leave its group.
            await consumer.start()
            failures = 0
            while True:
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=self._settings.max_batch
                )
                if not batches:
                    continue
                try:
                    await self._apply(subscriber, batches)
                except Exception as exc:  # noqa: BLE001 - not committed: fetched again
                    failures += 1
                    for partition, records in batches.items():
                        consumer.seek(partition, records[0].offset)
                    delay = backoff(
                        failures,
                        self._delivery.backoff_base_seconds,
                        self._delivery.backoff_max_seconds,
                    )
                    log.warning(
                        "kafka consumer %s: batch not applied (%s); again in %.1f s",
                        subscriber.name,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                # Only now, after the module's transaction committed. Bounded: aiokafka
                # retries some commit errors forever; a timeout recreates the consumer.
                async with asyncio.timeout(self._settings.request_timeout_ms / 1000):
                    await consumer.commit(
                        {p: records[-1].offset + 1 for p, records in batches.items()}
                    )
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    @staticmethod
    async def _apply(subscriber: Subscriber, batches: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        envelopes: list[Envelope] = []
        for records in batches.values():
            for record in records:
                try:
                    envelopes.append(Envelope.from_bytes(record.value or b""))
                except ValueError:
                    await subscriber.deliver_raw(record.value or b"")  # parked at once
        if envelopes:
            await subscriber.deliver(envelopes)
