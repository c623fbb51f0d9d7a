"""From a batch of new clicks to the increments of the rollups, in plain Python.

The consumer inserts the raw clicks and learns which visitors are new; this file turns
that into one increment per rollup row, so each row is upserted once per batch however
many clicks of the batch fall into it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import cache
from operator import attrgetter
from typing import Any
from uuid import UUID

from app.contracts.shortener import LinkClicked
from app.modules.analytics.dimensions import DIMENSIONS
from app.modules.analytics.enrichment import (
    clip,
    describe_agent,
    device_class,
    referer_host,
)

VisitorKey = tuple[str, date, str]  # code, UTC day, visitor hash
HourKey = tuple[str, datetime]  # code, UTC hour
DimensionKey = tuple[str, date, str, str]  # code, UTC day, dimension, value


@dataclass(frozen=True)
class Click:
    """A click event with what analytics derives from it."""

    event: LinkClicked
    occurred_at: datetime  # in UTC
    referer_host: str
    browser: str
    os: str
    device: str

    @property
    def click_id(self) -> UUID:
        return self.event.click_id

    @property
    def hour(self) -> datetime:
        return self.occurred_at.replace(minute=0, second=0, microsecond=0)

    @property
    def visitor(self) -> VisitorKey:
        return (self.event.code, self.occurred_at.date(), self.event.visitor_hash)

    def stored(self, column: str) -> Any:
        """The value of a `clicks` column: what analytics derived (a field of this class),
        else the event's field of that name, as received."""
        return reader(column)(self)

    def dimensions(self) -> dict[str, str]:
        """The value of each stats dimension: its clicks column, as a rollup key."""
        return {name: clip(read(self)) for name, read in _DIMENSION_READERS}


_DERIVED = frozenset(field.name for field in fields(Click)) - {"event"}


@cache
def reader(column: str) -> Callable[[Click], Any]:
    """Reads `column` of a click: made once per column, then one C call per click (the
    consumer reads fifteen columns of every click it stores)."""
    return attrgetter(column if column in _DERIVED else f"event.{column}")


_DIMENSION_READERS = [(d.name, reader(d.column)) for d in DIMENSIONS]


def enrich(event: LinkClicked) -> Click:
    occurred_at = event.occurred_at
    if occurred_at.tzinfo is None:  # the contract says UTC; a naive time is taken as such
        occurred_at = occurred_at.replace(tzinfo=UTC)
    agent = describe_agent(event.user_agent or "")
    return Click(
        event=event,
        occurred_at=occurred_at.astimezone(UTC),
        referer_host=referer_host(event.referer),
        browser=agent.browser,
        os=agent.os,
        device=device_class(agent, event.is_bot),
    )


def distinct_clicks(clicks: Iterable[Click]) -> list[Click]:
    """One click per click id: the first wins (a click redelivered under a new event id)."""
    first: dict[UUID, Click] = {}
    for click in clicks:
        first.setdefault(click.click_id, click)
    return list(first.values())


@dataclass
class HourIncrement:
    total: int = 0
    human: int = 0
    bot: int = 0
    unique_human: int = 0
    unique_bot: int = 0


def hourly_increments(
    clicks: Sequence[Click], new_visitors: set[VisitorKey]
) -> dict[HourKey, HourIncrement]:
    """Counts per (code, hour). A new visitor is unique in the hour of its earliest click
    in this batch, as human or bot by that click's verdict."""
    increments: dict[HourKey, HourIncrement] = {}
    first_click: dict[VisitorKey, Click] = {}
    for click in clicks:
        row = increments.setdefault((click.event.code, click.hour), HourIncrement())
        row.total += 1
        if click.event.is_bot:
            row.bot += 1
        else:
            row.human += 1
        if click.visitor in new_visitors:
            seen = first_click.get(click.visitor)
            if seen is None or click.occurred_at < seen.occurred_at:
                first_click[click.visitor] = click
    for click in first_click.values():
        row = increments[(click.event.code, click.hour)]
        if click.event.is_bot:
            row.unique_bot += 1
        else:
            row.unique_human += 1
    return increments


def dimension_increments(clicks: Sequence[Click]) -> dict[DimensionKey, tuple[int, int]]:
    """(human, bot) clicks per (code, day, dimension, value)."""
    human: Counter[DimensionKey] = Counter()
    bot: Counter[DimensionKey] = Counter()
    for click in clicks:
        day = click.occurred_at.date()
        counter = bot if click.event.is_bot else human
        for dimension, value in click.dimensions().items():
            counter[(click.event.code, day, dimension, value)] += 1
    return {key: (human[key], bot[key]) for key in human.keys() | bot.keys()}
