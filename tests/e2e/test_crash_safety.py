"""A SIGKILL while clicks are in flight loses no click the client saw, and counts none twice.

Run three ways: the one-process deployment killed, and in the split deployment over Kafka
the shortener killed, then (in another run) the analytics process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import asyncpg_dsn, truncate_all
from tests.e2e.deployment import Cluster
from tests.kafka import Tansu
from tests.support.accounts import bearer, login, new_account, shorten

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
CLICKERS = 16
# The kill comes once this many 302s have arrived (and every clicker has had one): the load
# is really going, however slow the machine. The deadline only guards against no load.
KILL_AFTER = 100
LOAD_DEADLINE = 120.0
CONVERGE_DEADLINE = 120.0  # a guard too: the loop below ends as soon as the counts agree


async def analytics_clicks(database_urls: dict[str, str], code: str) -> Counter[str]:
    """How many times analytics stored each request id (carried in the user agent)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["analytics"]))
    try:
        rows = await conn.fetch("SELECT user_agent FROM clicks WHERE code = $1", code)
    finally:
        await conn.close()
    return Counter(row["user_agent"].rsplit(" ", 1)[1] for row in rows)


async def shortener_click_count(database_urls: dict[str, str], code: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["shortener"]))
    try:
        count = await conn.fetchval("SELECT clicks FROM click_counts WHERE code = $1", code)
        return int(count or 0)
    finally:
        await conn.close()


class Load:
    """Clickers against the shortener, counting each 302 and each failure as it arrives."""

    def __init__(self, url: str, code: str) -> None:
        self.url = url
        self.code = code
        self.received: list[str] = []
        self.failed = 0
        self.in_flight = 0  # requests sent whose answer (or failure) has not come yet
        self._per_clicker = Counter[int]()
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> Load:
        self._tasks = [asyncio.create_task(self._clicker(n)) for n in range(CLICKERS)]
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def until(self, condition: Callable[[], bool], deadline: float, what: str) -> None:
        """Wait for `condition` (checked at every 302 and every failure); the deadline is
        a guard against a load that never comes, not a measure of how fast it comes."""
        try:
            async with asyncio.timeout(deadline):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{what}: not so after {deadline:.0f} s ({len(self.received)} redirects "
                f"received, {self.failed} requests failed, {len(self._per_clicker)} of "
                f"{CLICKERS} clickers got a 302)"
            ) from None

    def all_clickers_redirected(self, at_least: int) -> bool:
        return len(self.received) >= at_least and len(self._per_clicker) == CLICKERS

    async def _clicker(self, worker: int) -> None:
        sequence = 0
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                request_id = f"r{worker}-{sequence}"
                sequence += 1
                self.in_flight += 1
                try:
                    response = await client.get(
                        f"/{self.code}", headers={"User-Agent": f"{BROWSER} {request_id}"}
                    )
                except httpx.HTTPError:
                    self.failed += 1
                    self._changed.set()
                    await asyncio.sleep(0.05)
                    continue
                finally:
                    self.in_flight -= 1
                if response.status_code == 302:
                    self.received.append(request_id)
                    self._per_clicker[worker] += 1
                    self._changed.set()


async def click_while_killing(cluster: Cluster, code: str, victim: str) -> tuple[list[str], int]:
    """Clickers run against the shortener; once the load is going (every clicker redirected,
    KILL_AFTER 302s in all), `victim` is SIGKILLed, then restarted. Returns the request ids
    of the 302s received and how many requests were in flight at the kill."""
    load = Load(cluster.processes["shortener"].url, code).start()
    try:
        await load.until(
            lambda: load.all_clickers_redirected(KILL_AFTER),
            LOAD_DEADLINE,
            f"the load never got going ({KILL_AFTER} redirects needed)",
        )
        in_flight, received, failed = load.in_flight, len(load.received), load.failed
        cluster.processes[victim].kill()
        if victim == "shortener":
            # The requests in flight at the kill fail, and so does every one after it.
            await load.until(
                lambda: load.failed > failed,
                LOAD_DEADLINE,
                "no request failed after the shortener was killed",
            )
        else:
            # The shortener goes on redirecting (and counting) while analytics is down.
            await load.until(
                lambda: len(load.received) >= received + KILL_AFTER,
                LOAD_DEADLINE,
                "the shortener stopped redirecting with analytics down",
            )
    finally:
        await load.stop()
    cluster.processes[victim].start()
    return load.received, in_flight


@pytest.mark.parametrize(
    ("topology", "victim"),
    [("inprocess", "shortener"), ("split", "shortener"), ("split", "analytics")],
)
async def test_every_302_received_is_counted_exactly_once_across_a_sigkill(
    topology: str, victim: str, database_urls: dict[str, str], data_dir: Path, tansu: Tansu
) -> None:
    await truncate_all(database_urls)
    cluster = Cluster(topology, database_urls, data_dir, kafka_env=tansu.env()).start()
    try:
        async with cluster.client() as client:
            ana = await new_account(client)
            code = (await shorten(client, ana, "https://example.com/"))["code"]

        received, in_flight = await click_while_killing(cluster, code, victim)
        assert len(received) >= KILL_AFTER, "the load never got going"
        assert in_flight > 0, "no request was in flight at the kill"

        # Converged: analytics holds what the shortener counted, and stays there.
        deadline = time.monotonic() + CONVERGE_DEADLINE
        while True:
            counted = await analytics_clicks(database_urls, code)
            total = await shortener_click_count(database_urls, code)
            if sum(counted.values()) == total or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        async with cluster.client() as client:
            again = bearer((await login(client))["access_token"])
            link = (await client.get(f"/api/links/{code}", headers=again)).json()
    finally:
        cluster.stop()

    assert sum(counted.values()) == total, (
        f"not converged within {CONVERGE_DEADLINE:.0f} s: analytics holds "
        f"{sum(counted.values())} clicks, the shortener counted {total}"
    )
    missing = [request_id for request_id in received if counted[request_id] != 1]
    doubled = [request_id for request_id, times in counted.items() if times > 1]
    assert not missing, f"{len(missing)} clicks the client saw are not counted once"
    assert not doubled, f"{len(doubled)} clicks counted twice"
    # Clicks committed just before the kill whose 302 never arrived may count; none else.
    assert 0 <= sum(counted.values()) - len(received) <= CLICKERS
    assert link["click_count"] == sum(counted.values())
