"""Clickers that make each click identifiable, and what became of it.

Each request carries its own id at the end of a browser user agent (analytics stores the
user agent, so each stored click names its request). A click is then one of: a 302 received
(it must be counted exactly once), refused (the connection was never made: it was never
sent, so it must not be counted), or unanswered (sent, but the connection broke or the
answer was not a 302: it may be counted once or not at all, never twice).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx

from tests.conftest import asyncpg_dsn

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
CLIENT_TIMEOUT = 15.0  # a redirect may wait out a commit timeout, on a loaded machine


@dataclass
class Clicks:
    """Clickers against one base URL, spreading their clicks over `codes`."""

    url: str
    codes: Sequence[str]
    clickers: int = 16
    received: list[tuple[str, str]] = field(default_factory=list)  # (code, request id)
    unanswered: list[tuple[str, str]] = field(default_factory=list)
    refused: int = 0
    statuses: Counter[int] = field(default_factory=Counter)  # answers other than 302

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> Clicks:
        self._tasks = [asyncio.create_task(self._clicker(n)) for n in range(self.clickers)]
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def until(self, condition: Callable[[], bool], deadline: float, what: str) -> None:
        """Wait for `condition`, checked at each answer or failure; the deadline is a guard
        against a load that never comes."""
        try:
            async with asyncio.timeout(deadline):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{what}: not so after {deadline:.0f} s ({len(self.received)} redirects, "
                f"{len(self.unanswered)} unanswered, {self.refused} refused)"
            ) from None

    async def _clicker(self, worker: int) -> None:
        sequence = 0
        async with httpx.AsyncClient(base_url=self.url, timeout=CLIENT_TIMEOUT) as client:
            while not self._stop.is_set():
                code = self.codes[(worker + sequence) % len(self.codes)]
                click = (code, f"w{worker}-{sequence}")
                sequence += 1
                try:
                    response = await client.get(
                        f"/{code}", headers={"User-Agent": f"{BROWSER} {click[1]}"}
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    self.refused += 1  # no connection: the request never left
                except httpx.HTTPError:
                    self.unanswered.append(click)
                else:
                    if response.status_code == 302:
                        self.received.append(click)
                    else:
                        self.statuses[response.status_code] += 1
                        self.unanswered.append(click)
                    self._changed.set()
                    continue
                self._changed.set()
                await asyncio.sleep(0.05)  # the process is down: retry soon, not in a spin


# A link's count as the shortener answers it: folded, plus the tallies not folded yet.
COUNTED = (
    "SELECT coalesce((SELECT clicks FROM click_counts WHERE code = $1), 0) "
    "+ coalesce((SELECT sum(clicks) FROM click_tallies WHERE code = $1), 0)"
)


@dataclass(frozen=True)
class Tally:
    """Where the clicks ended up: analytics' stored clicks by request id, the shortener's
    click count per link."""

    stored: Counter[str]  # request id -> times analytics stored it
    stored_per_link: Counter[str]
    counted_per_link: Counter[str]  # the shortener's count (folded plus pending tallies)

    @property
    def converged(self) -> bool:
        return self.stored_per_link == self.counted_per_link


async def tally(urls: dict[str, str], codes: Sequence[str]) -> Tally:
    conn = await asyncpg.connect(asyncpg_dsn(urls["analytics"]))
    try:
        rows = await conn.fetch(
            "SELECT code, user_agent FROM clicks WHERE code = ANY($1::text[])", list(codes)
        )
    finally:
        await conn.close()
    stored = Counter(row["user_agent"].rsplit(" ", 1)[1] for row in rows)
    per_link = Counter(row["code"] for row in rows)
    conn = await asyncpg.connect(asyncpg_dsn(urls["shortener"]))
    try:
        counted = Counter({code: int(await conn.fetchval(COUNTED, code)) for code in codes})
    finally:
        await conn.close()
    return Tally(stored, +per_link, +counted)


async def converged(
    urls: dict[str, str], codes: Sequence[str], deadline: float
) -> tuple[Tally, float]:
    """The tally once analytics holds what the shortener counted (twice in a row, half a
    second apart), or the last one at the deadline; and the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    previous: Tally | None = None
    while True:
        now = await tally(urls, codes)
        if now.converged and previous == now:
            return now, loop.time() - started
        if loop.time() - started > deadline:
            return now, loop.time() - started
        previous = now
        await asyncio.sleep(0.5)
