"""One link's clicks made in PostgreSQL, with the rollups the consumer would have kept.

The consumer stores about 5,000 clicks a second: ten million would take over half an
hour. Here `generate_series` draws them in the analytics database (the shape of
click_shape.py: its lists, weights and share of bots), the browser, OS, device class and
referer host of each choice worked out beforehand by analytics' own enrichment; then
`visitors`, `url_stats` and `url_dimension_stats` are computed from the stored clicks by
the rules of rollups.py, and `check` proves them consistent with the clicks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.modules.analytics.dimensions import DIMENSIONS
from app.modules.analytics.enrichment import (
    MAX_VALUE_LENGTH,
    UNKNOWN,
    describe_agent,
    device_class,
    referer_host,
)
from bench.support.click_shape import (
    BOT_AGENTS,
    BOT_PLACE,
    BOT_REASON,
    BOT_SHARE,
    BOTS_PER_DAY,
    DAYS,
    HUMAN_AGENTS,
    IP,
    PLACES,
    REFERERS,
    VISITORS_PER_DAY,
)

CHUNK = 1_000_000  # clicks per statement (and transaction)


@dataclass(frozen=True)
class _Choices:
    """One list PostgreSQL draws from, as parallel arrays indexed from 1: the humans'
    choices first, each repeated by its weight, then the bots' (drawn uniformly)."""

    columns: dict[str, list[str | None]]
    humans: int
    bots: int


def _choices(
    humans: list[tuple[tuple[str | None, ...], int]],
    bots: list[tuple[str | None, ...]],
    names: tuple[str, ...],
) -> _Choices:
    rows = [row for row, weight in humans for _ in range(weight)] + bots
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return _Choices(columns, len(rows) - len(bots), len(bots))


def _agent(user_agent: str, is_bot: bool) -> tuple[str, str, str, str]:
    agent = describe_agent(user_agent)
    return user_agent, agent.browser, agent.os, device_class(agent, is_bot)


def _lists() -> dict[str, _Choices]:
    # Each city of a place gets its share of the place's weight (whole numbers: scaled).
    scale = math.lcm(*(len(cities) for _, cities, _ in PLACES))
    return {
        "agent": _choices(
            [(_agent(ua, False), weight) for ua, weight in HUMAN_AGENTS],
            [_agent(ua, True) for ua in BOT_AGENTS],
            ("user_agent", "browser", "os", "device"),
        ),
        "place": _choices(
            [
                ((country, city), weight * scale // len(cities))
                for country, cities, weight in PLACES
                for city in cities
            ],
            [BOT_PLACE],
            ("country", "city"),
        ),
        "referer": _choices(
            [((referer, referer_host(referer)), weight) for referer, weight in REFERERS],
            [(None, referer_host(None))],
            ("referer", "referer_host"),
        ),
    }


def _pick(name: str) -> str:
    """The 1-based index of a choice of list `name`, for a human or a bot."""
    return (
        f"CAST(CASE WHEN bot THEN :{name}_humans + 1 + floor(random() * :{name}_bots) "
        f"ELSE 1 + floor(random() * :{name}_humans) END AS integer) AS {name}"
    )


def _column(column: str, of: str) -> str:
    return f"(CAST(:{column} AS text[]))[{of}]"


_INSERT_CLICKS = text(
    f"""
    INSERT INTO clicks (click_id, code, occurred_at, ip_anonymized, country, city, user_agent,
                        referer, referer_host, browser, os, device, is_bot, bot_reason,
                        visitor_hash)
    SELECT gen_random_uuid(), :code, at, :ip,
           {_column("country", "place")}, {_column("city", "place")},
           {_column("user_agent", "agent")},
           {_column("referer", "referer")}, {_column("referer_host", "referer")},
           {_column("browser", "agent")}, {_column("os", "agent")}, {_column("device", "agent")},
           bot, CASE WHEN bot THEN :bot_reason END,
           to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') || CASE
               WHEN bot THEN '-bot-' || floor(random() * :bots_per_day)
               ELSE '-' || floor(random() * :visitors_per_day) END
    FROM (
        SELECT at, bot, {_pick("agent")}, {_pick("place")}, {_pick("referer")}
        FROM (
            SELECT CAST(:start AS timestamptz)
                       + make_interval(secs => :span * (n + random()) / :total) AS at,
                   random() < :bot_share AS bot
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
        ) AS drawn
    ) AS picked
    """  # noqa: S608 - made of constants, no input
)

_DAY = "CAST(occurred_at AT TIME ZONE 'UTC' AS date)"
_HOUR = "date_trunc('hour', occurred_at AT TIME ZONE 'UTC')"

_VISITORS = text(
    f"""
    INSERT INTO visitors (code, day, visitor_hash)
    SELECT DISTINCT code, {_DAY}, visitor_hash FROM clicks WHERE code = :code
    """  # noqa: S608 - made of constants, no input
)

# A visitor is unique in the hour of its first click of the day, as a human or a bot by
# that click's verdict (rollups.hourly_increments).
_URL_STATS = text(
    f"""
    WITH counted AS (
        SELECT {_HOUR} AS hour, count(*) AS total,
               count(*) FILTER (WHERE NOT is_bot) AS human, count(*) FILTER (WHERE is_bot) AS bot
        FROM clicks WHERE code = :code GROUP BY 1
    ), firsts AS (
        SELECT DISTINCT ON (first.day, first.visitor_hash) {_HOUR} AS hour, is_bot
        FROM (
            SELECT {_DAY} AS day, visitor_hash, min(occurred_at) AS at
            FROM clicks WHERE code = :code GROUP BY 1, 2
        ) AS first
        JOIN clicks ON clicks.code = :code AND clicks.occurred_at = first.at
                   AND clicks.visitor_hash = first.visitor_hash
        ORDER BY first.day, first.visitor_hash, click_id
    ), uniques AS (
        SELECT hour, count(*) FILTER (WHERE NOT is_bot) AS unique_human,
               count(*) FILTER (WHERE is_bot) AS unique_bot
        FROM firsts GROUP BY hour
    )
    INSERT INTO url_stats (code, hour, total, human, bot, unique_human, unique_bot)
    SELECT :code, counted.hour AT TIME ZONE 'UTC', total, human, bot,
           coalesce(unique_human, 0), coalesce(unique_bot, 0)
    FROM counted LEFT JOIN uniques USING (hour)
    """  # noqa: S608 - made of constants, no input
)

# Each dimension's value is its clicks column as enrichment.clip makes a rollup key
# (btrim strips spaces where clip strips any whitespace: the same for these clicks).
_COLUMNS = sorted({d.column for d in DIMENSIONS})
_VALUES = ", ".join(
    f"('{d.name}', coalesce(left(nullif(btrim({d.column}), ''), {MAX_VALUE_LENGTH}), '{UNKNOWN}'))"
    for d in DIMENSIONS
)
_DIMENSION_STATS = text(
    f"""
    WITH combinations AS (
        SELECT {_DAY} AS day, is_bot, {", ".join(_COLUMNS)}, count(*) AS n
        FROM clicks WHERE code = :code
        GROUP BY day, is_bot, {", ".join(_COLUMNS)}
    )
    INSERT INTO url_dimension_stats (code, day, dimension, value, human, bot)
    SELECT :code, day, dimension, value,
           coalesce(sum(n) FILTER (WHERE NOT is_bot), 0),
           coalesce(sum(n) FILTER (WHERE is_bot), 0)
    FROM combinations CROSS JOIN LATERAL (VALUES {_VALUES}) AS d(dimension, value)
    GROUP BY day, dimension, value
    """  # noqa: S608 - made of constants, no input
)


async def seed_clicks(
    engine: AsyncEngine, code: str, total: int, start: datetime, progress: bool = True
) -> None:
    """`total` clicks of `code` over DAYS days from `start`, and their rollups."""
    parameters: dict[str, Any] = {
        "code": code,
        "ip": IP,
        "bot_reason": BOT_REASON,
        "bots_per_day": BOTS_PER_DAY,
        "visitors_per_day": VISITORS_PER_DAY,
        "bot_share": BOT_SHARE,
        "start": start,
        "span": timedelta(days=DAYS).total_seconds(),
        "total": total,
    }
    for name, choices in _lists().items():
        parameters |= choices.columns
        parameters |= {f"{name}_humans": choices.humans, f"{name}_bots": choices.bots}
    began = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT setseed(0.20261125)"))  # the same clicks every run
        await conn.commit()
        for first in range(0, total, CHUNK):
            last = min(first + CHUNK, total) - 1
            await conn.execute(_INSERT_CLICKS, parameters | {"first": first, "last": last})
            await conn.commit()
            if progress:
                print(f"  {last + 1:,} clicks, {time.perf_counter() - began:.1f} s", flush=True)
        await conn.execute(text("SET work_mem = '256MB'"))
        for statement in (_VISITORS, _URL_STATS, _DIMENSION_STATS):
            await conn.execute(statement, {"code": code})
        await conn.commit()
    if progress:
        print(f"  and the rollups, {time.perf_counter() - began:.1f} s", flush=True)


async def analyze(engine: AsyncEngine) -> None:
    """Fresh planner statistics for analytics' tables, as autovacuum would gather them
    in time (after a bulk load it may not have yet)."""
    async with engine.connect() as conn:
        for table in ("url_creations", "clicks", "visitors", "url_stats", "url_dimension_stats"):
            await conn.execute(text(f"ANALYZE {table}"))
        await conn.commit()


async def check(engine: AsyncEngine, code: str) -> str:
    """The rollups of `code` against its raw clicks; a line saying they agree, else exit."""
    async with engine.connect() as conn:
        clicks, human = (
            await conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE NOT is_bot) FROM clicks "
                    "WHERE code = :code"
                ),
                {"code": code},
            )
        ).one()
        hours = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(total), 0), coalesce(sum(human), 0), "
                    "coalesce(sum(unique_human + unique_bot), 0) FROM url_stats WHERE code = :code"
                ),
                {"code": code},
            )
        ).one()
        visitors = (
            await conn.execute(
                text("SELECT count(*) FROM visitors WHERE code = :code"), {"code": code}
            )
        ).scalar_one()
        dimensions = {
            row.dimension: (row.human, row.bot)
            for row in await conn.execute(
                text(
                    "SELECT dimension, sum(human) AS human, sum(bot) AS bot "
                    "FROM url_dimension_stats WHERE code = :code GROUP BY dimension"
                ),
                {"code": code},
            )
        }
    expected = {d.name: (human, clicks - human) for d in DIMENSIONS}
    if tuple(hours) != (clicks, human, visitors) or dimensions != expected:
        raise SystemExit(
            f"the rollups of {code} disagree with its clicks: {clicks:,} clicks ({human:,} "
            f"human), {visitors:,} visitors; url_stats (total, human, uniques) {tuple(hours)}; "
            f"url_dimension_stats (human, bot) {dimensions}"
        )
    return (
        f"consistent: {clicks:,} clicks ({human:,} human, {clicks - human:,} bot) = url_stats "
        f"totals = each of the {len(dimensions)} dimensions' sums in url_dimension_stats; "
        f"{visitors:,} visitor-days = url_stats uniques"
    )
