"""Fixtures for tests against real encurta processes (and a real Kafka-protocol broker)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import traversable_tmp, truncate_all
from tests.e2e.deployment import TOPOLOGIES, Cluster, Deployment
from tests.kafka import Tansu


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-e2e-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tansu() -> Iterator[Tansu]:
    broker = Tansu().start()
    yield broker
    broker.stop()


@pytest.fixture
def deployment(database_urls: dict[str, str], data_dir: Path) -> Iterator[Deployment]:
    asyncio.run(truncate_all(database_urls))
    server = Deployment(database_urls, data_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=TOPOLOGIES)
def cluster(
    request: pytest.FixtureRequest,
    database_urls: dict[str, str],
    data_dir: Path,
    tansu: Tansu,
) -> Iterator[Cluster]:
    """The same product three ways: one process in-process, one over Kafka, one per module."""
    asyncio.run(truncate_all(database_urls))
    running = Cluster(request.param, database_urls, data_dir, kafka_env=tansu.env()).start()
    yield running
    running.stop()
