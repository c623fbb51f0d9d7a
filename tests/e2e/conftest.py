"""Fixtures for tests against a real `encurta serve` process."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import traversable_tmp, truncate_all
from tests.e2e.deployment import Deployment


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-e2e-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def deployment(database_urls: dict[str, str], data_dir: Path) -> Iterator[Deployment]:
    asyncio.run(truncate_all(database_urls))
    server = Deployment(database_urls, data_dir)
    server.start()
    yield server
    server.stop()
