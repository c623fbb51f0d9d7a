"""Fixtures of the bus conformance suite: a scratch database with an outbox, an inbox and a
`received` table; the suite's own Tansu broker (the restart test wipes it, so it is not
shared with the end-to-end tests); and `transport`, the same tests over both buses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.settings import DeliverySettings, KafkaSettings
from app.kernel.database import create_engine
from app.kernel.embedded import EmbeddedPostgres
from tests.bus.support import REJECT_13, Transport, metadata
from tests.kafka import Tansu

TRANSPORTS = ["inprocess", "kafka"]


@pytest.fixture(scope="session")
def tansu() -> Iterator[Tansu]:
    broker = Tansu().start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def scratch_url(embedded_postgres: EmbeddedPostgres) -> str:
    """A database of its own on the embedded server (role and database encurta_bustest)."""

    async def provision() -> str:
        url = (await embedded_postgres.provision(["bustest"]))["bustest"]
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.drop_all)
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()
        return url

    return asyncio.run(provision())


@pytest.fixture
async def engine(scratch_url: str) -> AsyncIterator[AsyncEngine]:
    """The scratch database, emptied: it is both the producer's and the consumer's."""
    engine = create_engine(scratch_url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"ALTER TABLE received DROP CONSTRAINT IF EXISTS {REJECT_13}")
        names = ", ".join(table.name for table in metadata.sorted_tables)
        await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    yield engine
    await engine.dispose()


@pytest.fixture
def delivery() -> DeliverySettings:
    return DeliverySettings(backoff_base_seconds=0.01, max_attempts=2, relay_poll_seconds=0.2)


def kafka_settings(tansu: Tansu, **changes: object) -> KafkaSettings:
    """Topics and groups of their own, so no test sees another's messages or offsets."""
    unique = uuid.uuid4().hex[:10]
    return KafkaSettings(
        **{  # type: ignore[arg-type]
            **tansu.settings(topic_prefix=f"bt{unique}.", group_prefix=f"bt{unique}"),
            **changes,
        }
    )


@pytest.fixture
async def kafka_transport(tansu: Tansu, delivery: DeliverySettings) -> AsyncIterator[Transport]:
    """For the cases that exist only on Kafka (consumer groups, offsets, the broker)."""
    transport = Transport("kafka", delivery, kafka_settings(tansu))
    yield transport
    await transport.close()


@pytest.fixture(params=TRANSPORTS)
async def transport(
    request: pytest.FixtureRequest, delivery: DeliverySettings
) -> AsyncIterator[Transport]:
    if request.param == "kafka":
        tansu: Tansu = request.getfixturevalue("tansu")
        built = Transport("kafka", delivery, kafka_settings(tansu))
    else:
        built = Transport("inprocess", delivery)
    yield built
    await built.close()
