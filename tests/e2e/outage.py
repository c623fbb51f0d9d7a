"""A module's PostgreSQL stopped while clients click, then started again.

encurta runs as one process; the victim module's database lives on a PostgreSQL of its own
(the other modules' on the suite's), so stopping it (`pg_ctl stop -m fast`: connections
cut, new ones refused) is an outage of that module's database alone. Shared by
tests/e2e/test_database_outage.py (a few seconds) and bench/outage.py (10 s, as issue 14
asks).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.kernel import migrations
from app.kernel.embedded import EmbeddedPostgres
from tests.e2e.clicking import Clicks, Tally, converged
from tests.e2e.deployment import Deployment
from tests.support.accounts import new_account, shorten

CLICKERS = 8
WARM = 50  # 302s before the outage (the link is cached) and after it (clicks flow again)
LOAD_DEADLINE = 120.0  # guards: the waits end on events
CONVERGE_DEADLINE = 180.0


@contextmanager
def own_postgres(root: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of its own (fsync off), to be stopped and started by the scenario."""
    server = EmbeddedPostgres(root / "postgres", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root / "postgres", ignore_errors=True)


async def isolated(server: EmbeddedPostgres, module: str) -> str:
    """`module`'s database on `server`, migrated; its URL."""
    url = (await server.provision([module]))[module]
    await asyncio.to_thread(migrations.upgrade, module, url)
    return url


@dataclass(frozen=True)
class Outage:
    victim: str
    seconds: float  # how long the database was down
    before: int  # 302s before the outage
    during: int  # 302s received while the database was down
    after: int  # 302s after it returned
    unanswered: int  # requests sent whose answer never came (or was not a 302)
    refused: int
    alive: bool  # the encurta process never exited
    lost: int  # 302s received that analytics never stored
    duplicated: int  # clicks stored more than once
    phantom: int  # stored clicks no request of ours made
    agree: bool  # the shortener's count equals analytics' total
    counted: int  # the shortener's count at the end
    converge_seconds: float  # from the database's return until the counts agreed


async def click_through_outage(
    victim: str, server: EmbeddedPostgres, urls: Mapping[str, str], data_dir: Path, seconds: float
) -> Outage:
    """Clients click one link; once WARM 302s arrived, `victim`'s database (on `server`)
    is stopped for `seconds`, then started; clicks go on until WARM more 302s."""
    loop = asyncio.get_running_loop()
    encurta = Deployment(urls, data_dir).start()
    try:
        async with httpx.AsyncClient(base_url=encurta.url, timeout=30) as client:
            code = (await shorten(client, await new_account(client), "https://example.com/"))[
                "code"
            ]
        load = Clicks(encurta.url, [code], clickers=CLICKERS).start()
        try:
            await load.until(lambda: len(load.received) >= WARM, LOAD_DEADLINE, "warm-up")
            before = len(load.received)
            await asyncio.to_thread(server.stop)
            stopped = loop.time()
            # A few 302s must come while it is down (each after the commit timeout when
            # the shortener's database is the one away); then the outage lasts its time.
            await load.until(
                lambda: len(load.received) >= before + CLICKERS,
                LOAD_DEADLINE,
                f"redirects with the {victim} database down",
            )
            await asyncio.sleep(max(0.0, seconds - (loop.time() - stopped)))
            await asyncio.to_thread(server.start)
            down = loop.time() - stopped
            back = loop.time()
            returned = len(load.received)
            await load.until(
                lambda: len(load.received) >= returned + WARM, LOAD_DEADLINE, "after the outage"
            )
        finally:
            await load.stop()
        alive = encurta.process is not None and encurta.process.poll() is None
        final, _ = await converged(dict(urls), [code], CONVERGE_DEADLINE)
        converge_seconds = loop.time() - back
    finally:
        encurta.stop()
    return summary(victim, down, load, final, before, returned, alive, converge_seconds)


def summary(
    victim: str,
    down: float,
    load: Clicks,
    final: Tally,
    before: int,
    returned: int,
    alive: bool,
    converge_seconds: float,
) -> Outage:
    received = {request for _, request in load.received}
    unanswered = {request for _, request in load.unanswered}
    return Outage(
        victim=victim,
        seconds=down,
        before=before,
        during=returned - before,
        after=len(load.received) - returned,
        unanswered=len(unanswered),
        refused=load.refused,
        alive=alive,
        lost=sum(1 for request in received if not final.stored[request]),
        duplicated=sum(times - 1 for times in final.stored.values() if times > 1),
        phantom=sum(1 for r in final.stored if r not in received and r not in unanswered),
        agree=final.converged,
        counted=sum(final.counted_per_link.values()),
        converge_seconds=converge_seconds,
    )
