"""Retention: rows that have served their purpose are deleted, in small batches.

A module (and the bus, for its outbox and inbox tables) declares `Retention` rules: a
table, the column that says how old a row is, how old a row may grow (None: kept forever)
and, where only some rows may go, a condition (an outbox row only once sent). `purge`
applies them: each batch is one short transaction that deletes at most `batch` rows, with a
pause between batches, so a purge of millions of rows never holds many row locks for long
or starves the writers; `dry_run` counts instead. The composition root runs the rules
periodically (`RetentionJob`) and `encurta purge` runs them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

DEFAULT_BATCH = 5000
DEFAULT_PAUSE_SECONDS = 0.05  # between batches: other transactions get the rows' pages
FIRST_PASS_AFTER_SECONDS = 60.0
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class RetentionError(ValueError):
    """A retention setting that would break a guarantee; the message names the setting."""


@dataclass(frozen=True)
class Retention:
    """What may go: rows of `table` whose `age_column` is older than `older_than`.

    `where` narrows the rows that may go at all (SQL on the table's own columns, written
    in code, never from input). `outlives_replay`: the rows are how a redelivered event
    is recognised or counted right (raw clicks, visitors), so they must be kept longer than
    any event may be redelivered (`check_horizon`).
    """

    what: str  # for people: "raw clicks"
    table: str
    age_column: str
    older_than: timedelta | None  # None: kept forever
    setting: str  # the variable that sets `older_than`: named in reports and errors
    where: str = ""
    batch: int = DEFAULT_BATCH
    outlives_replay: bool = False

    def __post_init__(self) -> None:
        for name in (self.table, self.age_column):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")

    @property
    def condition(self) -> str:
        age = f"{self.age_column} < now() - make_interval(secs => :age)"
        return f"{age} AND ({self.where})" if self.where else age

    def delete_batch(self) -> str:
        """One batch, by physical row address (any table, with or without a key). The
        condition is checked again on the rows deleted: a row changed meanwhile (an outbox
        row's `sent_at`...) is deleted only if it still may go."""
        return (
            f"DELETE FROM {self.table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - names from code
            f"SELECT ctid FROM {self.table} WHERE {self.condition} LIMIT :batch"
            f")) AND {self.condition}"
        )

    def count(self) -> str:
        return f"SELECT count(*) FROM {self.table} WHERE {self.condition}"  # noqa: S608


def days(value: int | None) -> timedelta | None:
    """A `..._RETENTION_DAYS` setting as a duration (None: keep)."""
    return None if value is None else timedelta(days=value)


def describe(older_than: timedelta | None) -> str:
    """ "older than" as the purge report says it."""
    if older_than is None:
        return "kept"
    seconds = int(older_than.total_seconds())
    if seconds == 0:
        return "expired"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % length == 0:
            count = seconds // length
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable: every count of seconds is whole seconds")


def check_horizon(rules: Sequence[Retention], horizon: timedelta, horizon_setting: str) -> None:
    """Refuse a rule that would forget rows before the last redelivery of their events
    could arrive: a click counted twice, a returning visitor counted as new."""
    for rule in rules:
        if rule.outlives_replay and rule.older_than is not None and rule.older_than <= horizon:
            raise RetentionError(
                f"{rule.setting} ({describe(rule.older_than)}) must be longer than the replay "
                f"horizon, {horizon_setting} ({describe(horizon)}): {rule.what} younger than "
                "that are how a redelivered event is recognised"
            )


async def purge_rule(
    engine: AsyncEngine,
    rule: Retention,
    *,
    dry_run: bool = False,
    pause_seconds: float = DEFAULT_PAUSE_SECONDS,
) -> int:
    """The rows of `rule` that went (or, `dry_run`, would go): batch after batch, each in a
    transaction of its own, until a batch finds fewer rows than it may take."""
    if rule.older_than is None:
        return 0
    age = rule.older_than.total_seconds()
    if dry_run:
        async with engine.connect() as conn:
            return int((await conn.execute(text(rule.count()), {"age": age})).scalar_one())
    statement = text(rule.delete_batch())
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(statement, {"age": age, "batch": rule.batch})).rowcount
        total += deleted
        if deleted < rule.batch:
            return total
        await asyncio.sleep(pause_seconds)


async def purge(
    engine: AsyncEngine,
    rules: Sequence[Retention],
    *,
    dry_run: bool = False,
    pause_seconds: float = DEFAULT_PAUSE_SECONDS,
) -> list[int]:
    """`purge_rule` for each rule in turn: the counts, in the rules' order."""
    return [
        await purge_rule(engine, rule, dry_run=dry_run, pause_seconds=pause_seconds)
        for rule in rules
    ]


class RetentionJob:
    """Applies one module's rules every `interval_seconds`, in the background (a long purge
    must not delay serving), the first time `FIRST_PASS_AFTER_SECONDS` after the start."""

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        rules: Sequence[Retention],
        interval_seconds: float,
    ) -> None:
        self.name = name
        self.rules = [rule for rule in rules if rule.older_than is not None]
        self._engine = engine
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.rules:
            self._task = asyncio.create_task(self._forever(), name=f"retention-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        try:
            counts = await purge(self._engine, self.rules)
        except Exception as exc:  # noqa: BLE001 - a purge can wait for the next period
            first_line = (str(exc).splitlines() or [""])[0][:200]
            log.warning(
                "%s: retention purge failed: %s: %s", self.name, type(exc).__name__, first_line
            )
            return
        for rule, count in zip(self.rules, counts, strict=True):
            if count:
                log.info(
                    "%s: purged %d %s older than %s",
                    self.name,
                    count,
                    rule.what,
                    describe(rule.older_than),
                )

    async def _forever(self) -> None:
        # The first pass a little after the start (a process restarted more often than
        # the interval still purges), not during it.
        await asyncio.sleep(min(self._interval, FIRST_PASS_AFTER_SECONDS))
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)
