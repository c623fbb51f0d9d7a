"""Visits to codes that do not exist (orphan visits), counted per day and path.

A 404 must stay as cheap as it is, and a scanner must not be able to grow a table, so a
visit is a dict increment here; every few seconds (and at shutdown) the tally is folded
into the rollup `orphan_visits(day, path, visits)` by one upsert. Nothing else of the
visit is kept: no address, no user agent. Paths are cut to `MAX_PATH` characters, and a
day holds at most `MAX_PATHS` paths (in memory and in the table): visits to any more are
counted under `OTHER`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.modules.shortener.tables import orphan_visits

log = logging.getLogger(__name__)

MAX_PATH = 200
MAX_PATHS = 1000  # distinct paths per day
OTHER = "(other)"
KEEP_DAYS = 400
_EPOCH = date(1970, 1, 1)
# One flush at a time over every replica, so the cap on a day's paths holds.
_FLUSH_LOCK = 0x73680001

_UPSERT = text(
    """
    INSERT INTO orphan_visits (day, path, visits)
    SELECT * FROM unnest(CAST(:days AS date[]), CAST(:paths AS text[]), CAST(:visits AS bigint[]))
    ON CONFLICT (day, path) DO UPDATE SET visits = orphan_visits.visits + EXCLUDED.visits
    """
)

Key = tuple[int, str]  # (days since the epoch, UTC; the path without its leading "/")


@dataclass(frozen=True)
class OrphanVisits:
    day: date
    path: str
    visits: int


def _today(plus: int = 0) -> date:
    """The UTC day, as the tally counts days, `plus` days on."""
    return datetime.now(UTC).date() + timedelta(days=plus)


def _storable(path: str) -> str:
    """As PostgreSQL's text can hold it: no NUL, no lone surrogate."""
    return path.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


class OrphanTally:
    def __init__(self, engine: AsyncEngine, interval_seconds: float = 10.0) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._tally: dict[Key, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def hit(self, code: str) -> None:
        """One visit to `/{code}`, which names no link: on the 404 path, so a dict increment."""
        key = (int(time.time() // 86400), code[: MAX_PATH - 1])
        tally = self._tally
        if key in tally:
            tally[key] += 1
        elif len(tally) < MAX_PATHS:
            tally[key] = 1
        else:
            other = (key[0], OTHER)
            tally[other] = tally.get(other, 0) + 1

    @property
    def pending(self) -> int:
        """Visits counted here and not yet in the table."""
        return sum(self._tally.values())

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:  # the visits of the last seconds are lost, nothing else
            log.exception("orphan visits: the last flush failed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("orphan visits: a flush failed; retried at the next")

    async def flush(self) -> None:
        """Fold the tally into the table: one transaction, one upsert. On failure the
        counts go back into the tally for the next flush."""
        async with self._flushing:
            taken, self._tally = self._tally, {}
            if not taken:
                return
            try:
                await self._write(taken)
            except BaseException:
                for key, visits in taken.items():
                    self._tally[key] = self._tally.get(key, 0) + visits
                raise

    async def _write(self, taken: dict[Key, int]) -> None:
        by_day: dict[date, dict[str, int]] = {}
        for (day_number, code), visits in taken.items():
            paths = by_day.setdefault(_EPOCH + timedelta(days=day_number), {})
            path = OTHER if code == OTHER else _storable("/" + code)
            paths[path] = paths.get(path, 0) + visits
        async with self._engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(_FLUSH_LOCK)))
            rows: list[tuple[date, str, int]] = []
            for day, paths in by_day.items():
                known = set(
                    (
                        await conn.execute(
                            select(orphan_visits.c.path).where(orphan_visits.c.day == day)
                        )
                    ).scalars()
                )
                room = MAX_PATHS - len(known - {OTHER})
                overflow = 0
                # The busiest new paths take the room left; the rest count as OTHER.
                for path, visits in sorted(paths.items(), key=lambda item: -item[1]):
                    if path == OTHER or (path not in known and room <= 0):
                        overflow += visits
                        continue
                    if path not in known:
                        room -= 1
                    rows.append((day, path, visits))
                if overflow:
                    rows.append((day, OTHER, overflow))
            await conn.execute(
                _UPSERT,
                {
                    "days": [row[0] for row in rows],
                    "paths": [row[1] for row in rows],
                    "visits": [row[2] for row in rows],
                },
            )
            old = orphan_visits.c.day < _today(-KEEP_DAYS)
            await conn.execute(orphan_visits.delete().where(old))


async def recent(
    engine: AsyncEngine, days: int, page: int, per_page: int
) -> tuple[list[OrphanVisits], int]:
    """The last `days` days' rows (today included), the latest day first and its busiest
    paths first, with how many rows there are."""
    chosen = orphan_visits.c.day >= _today(1 - days)
    async with engine.connect() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(orphan_visits).where(chosen))
        ).scalar_one()
        rows = (
            await conn.execute(
                select(orphan_visits.c.day, orphan_visits.c.path, orphan_visits.c.visits)
                .where(chosen)
                .order_by(
                    orphan_visits.c.day.desc(), orphan_visits.c.visits.desc(), orphan_visits.c.path
                )
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        ).all()
    return [OrphanVisits(row.day, row.path, row.visits) for row in rows], total
