"""A real `encurta serve` process on the suite's PostgreSQL, for end-to-end and crash tests.

It is started and killed like an operator would: a subprocess, SIGINT to stop, SIGKILL to
crash. The databases are the suite's embedded server, handed over as external URLs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

from app.registry import NAMES

ENCURTA = Path(sys.executable).parent / "encurta"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Deployment:
    """One encurta process; `start()` again after `kill()` restarts it on the same data."""

    def __init__(
        self,
        database_urls: Mapping[str, str],
        data_dir: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
        env.update(
            ENCURTA_DATA_DIR=str(data_dir),
            ENCURTA_LOG_LEVEL="warning",
            ENCURTA_AUTH__ARGON2__TIME_COST="1",
            ENCURTA_AUTH__ARGON2__MEMORY_COST_KIB="64",
            ENCURTA_AUTH__ARGON2__PARALLELISM="1",
            # The tests speak for many clients through loopback, as a proxy would.
            ENCURTA_SHORTENER__TRUSTED_PROXIES="127.0.0.1/32",
            ENCURTA_BUS__RELAY_POLL_SECONDS="0.2",
        )
        for module, url in database_urls.items():
            env[f"ENCURTA_{module.upper()}__DATABASE_URL"] = url
        env.update(settings or {})
        self.env = env
        self._log = data_dir / f"encurta-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Deployment:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ENCURTA), "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"encurta exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"encurta did not become ready:\n{self.log()}")

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown hooks, nothing flushed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""


TOPOLOGIES = ("inprocess", "kafka", "split")
_ROUTES = [
    ("/api/auth", "auth"),
    ("/.well-known", "auth"),
    ("/api/keys", "auth"),
    ("/api/admin/users", "auth"),
    ("/api/admin/invites", "auth"),
    ("/account", "auth"),
    ("/admin/users", "auth"),
    ("/admin/invites", "auth"),
    ("/api/stats/orphans", "shortener"),
    ("/rest/v3/visits/orphan", "shortener"),
    ("/rest/v3/visits", "analytics"),
    ("/api/stats", "analytics"),
    ("/api/webhooks", "webhooks"),
]


class _Router(httpx.AsyncBaseTransport):
    """What a load balancer in front of a split deployment does: route by path."""

    def __init__(self, bases: Mapping[str, str]) -> None:
        self._bases = {name: httpx.URL(url) for name, url in bases.items()}
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        module = next(
            (name for prefix, name in _ROUTES if request.url.path.startswith(prefix)),
            "shortener",
        )
        base = self._bases[module]
        request.url = request.url.copy_with(host=base.host, port=base.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Cluster:
    """encurta as one process (in-process bus or Kafka), or as one process per module."""

    def __init__(
        self,
        topology: str,
        database_urls: Mapping[str, str],
        data_dir: Path,
        kafka_env: Mapping[str, str] | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.topology = topology
        extra = dict(settings or {})
        if topology != "inprocess":
            assert kafka_env is not None, "kafka topologies need a broker"
            # Topics and groups of their own, so tests sharing one broker never meet.
            prefix = f"t{uuid.uuid4().hex[:8]}"
            extra |= dict(kafka_env) | {
                "ENCURTA_BUS__KAFKA__TOPIC_PREFIX": f"{prefix}.",
                "ENCURTA_BUS__KAFKA__GROUP_PREFIX": prefix,
            }
        if topology == "split":
            auth = Deployment(
                {"auth": database_urls["auth"]},
                data_dir / "auth",
                extra | {"ENCURTA_MODULES": "auth"},
            )
            jwks = {"ENCURTA_TOKENS__JWKS_URL": f"{auth.url}/.well-known/jwks.json"}
            self.processes = {"auth": auth} | {
                module: Deployment(
                    {module: database_urls[module]},
                    data_dir / module,
                    extra | jwks | {"ENCURTA_MODULES": module},
                )
                for module in NAMES
                if module != "auth"
            }
        else:
            single = Deployment(database_urls, data_dir / "all", extra)
            self.processes = dict.fromkeys(NAMES, single)

    def replica(self, module: str, data_dir: Path) -> Deployment:
        """Another process like the one serving `module`, on its own port (not started)."""
        model = self.processes[module]
        twin = Deployment({}, data_dir, {})
        twin.env = dict(model.env)
        return twin

    def start(self) -> Cluster:
        for process in dict.fromkeys(self.processes.values()):
            process.start()
        return self

    def stop(self) -> None:
        for process in dict.fromkeys(self.processes.values()):
            process.stop()

    def client(self, timeout: float = 10.0) -> httpx.AsyncClient:
        if self.topology != "split":
            return httpx.AsyncClient(base_url=self.processes["auth"].url, timeout=timeout)
        router = _Router({name: process.url for name, process in self.processes.items()})
        return httpx.AsyncClient(
            base_url=self.processes["shortener"].url, transport=router, timeout=timeout
        )
