"""The stats use case: one link's clicks over a range, read from the rollups alone.

Three indexed reads whatever the link's traffic: the owner from `url_creations`, the series
and totals from `url_stats` (hourly rows grouped into buckets by PostgreSQL), the top lists
from `url_dimension_stats` (daily rows ranked by PostgreSQL). Raw clicks are never counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.modules.analytics.dimensions import DIMENSIONS
from app.modules.analytics.schemas import (
    Bucket,
    Interval,
    LinkStats,
    StatsQuery,
    TopEntry,
    TopLists,
    Totals,
)
from app.modules.analytics.settings import AnalyticsSettings
from app.modules.analytics.timeline import bucket_starts, floor_hour


class LinkNotFound(Exception):
    """Unknown, deleted, or someone else's: the caller cannot tell which."""


class InvalidRange(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_OWNER = text("SELECT owner_id FROM url_creations WHERE code = :code AND deleted_at IS NULL")
_TOTALS = text(
    """
    SELECT c.code, coalesce(sum(s.total), 0) AS total
    FROM url_creations c LEFT JOIN url_stats s ON s.code = c.code
    WHERE c.deleted_at IS NULL
    GROUP BY c.code
    """
)
_SERIES = text(
    """
    SELECT date_trunc(:unit, hour AT TIME ZONE 'UTC') AS bucket,
           sum(total) AS total, sum(human) AS human, sum(bot) AS bot,
           sum(unique_human) AS unique_human, sum(unique_bot) AS unique_bot
    FROM url_stats
    WHERE code = :code AND hour >= :start AND hour < :end
    GROUP BY 1
    """
)
_TOP = text(
    """
    SELECT dimension, value, clicks FROM (
        SELECT dimension, value, clicks,
               row_number() OVER (PARTITION BY dimension ORDER BY clicks DESC, value) AS rank
        FROM (
            SELECT dimension, value,
                   sum(human) + CASE WHEN CAST(:include_bots AS boolean)
                                     THEN sum(bot) ELSE 0 END AS clicks
            FROM url_dimension_stats
            WHERE code = :code AND day >= :first_day AND day <= :last_day
            GROUP BY dimension, value
        ) AS counted
        WHERE clicks > 0
    ) AS ranked
    WHERE rank <= :limit
    ORDER BY dimension, rank
    """
)
# dimension in url_dimension_stats -> field of TopLists
_TOP_FIELDS = {dimension.name: dimension.top_list for dimension in DIMENSIONS}


@dataclass(frozen=True)
class _Range:
    start: datetime  # the first hour counted
    end: datetime  # exclusive
    interval: Interval
    include_bots: bool


@dataclass
class StatsService:
    engine: AsyncEngine
    settings: AnalyticsSettings

    async def click_totals(self) -> dict[str, int]:
        """Every live link's total of clicks: analytics' side of `encurta reconcile`."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(_TOTALS)
            return {row.code: row.total for row in rows}

    async def owns(self, owner_id: UUID, code: str) -> bool:
        """Whether `owner_id` owns the live link `code`."""
        async with self.engine.connect() as conn:
            owner = (await conn.execute(_OWNER, {"code": code})).scalar_one_or_none()
        return owner is not None and owner == owner_id

    async def link_stats(self, owner_id: UUID, code: str, query: StatsQuery) -> LinkStats:
        """Raises LinkNotFound unless `owner_id` owns the live link `code`, and
        InvalidRange for a range the rollups cannot answer."""
        requested_from, requested_to = self._resolve(query, datetime.now(UTC))
        span = _Range(
            start=floor_hour(requested_from),
            end=requested_to,
            interval=query.interval,
            include_bots=query.include_bots,
        )
        async with self.engine.connect() as conn:
            owner = (await conn.execute(_OWNER, {"code": code})).scalar_one_or_none()
            if owner is None or owner != owner_id:
                raise LinkNotFound(code)
            totals, unique_clicks, series = await self._series(conn, code, span)
            top = await self._top(conn, code, span)
        return LinkStats(
            code=code,
            from_=requested_from,
            to=requested_to,
            interval=query.interval,
            include_bots=query.include_bots,
            totals=totals,
            unique_clicks=unique_clicks,
            series=series,
            top=top,
        )

    def _resolve(self, query: StatsQuery, now: datetime) -> tuple[datetime, datetime]:
        """The range asked for, with defaults (the last N days up to now), or InvalidRange."""
        default_span = timedelta(days=self.settings.default_range_days)
        to = query.to or now
        start = query.from_ or to - default_span
        if start > to:
            raise InvalidRange("from", "must not be after 'to'.")
        if to - start > timedelta(days=self.settings.max_range_days):
            raise InvalidRange(
                "from", f"the range may span at most {self.settings.max_range_days} days."
            )
        hourly_limit = self.settings.max_hourly_range_days
        if query.interval == "hour" and to - start > timedelta(days=hourly_limit):
            raise InvalidRange(
                "interval",
                f"hourly buckets cover at most {hourly_limit} days; "
                "ask for day or week, or a shorter range.",
            )
        return start, to

    @staticmethod
    async def _series(
        conn: AsyncConnection, code: str, span: _Range
    ) -> tuple[Totals, int, list[Bucket]]:
        rows = await conn.execute(
            _SERIES, {"unit": span.interval, "code": code, "start": span.start, "end": span.end}
        )
        by_bucket = {row.bucket.replace(tzinfo=UTC): row for row in rows}
        all_clicks = sum(row.total for row in by_bucket.values())
        human = sum(row.human for row in by_bucket.values())
        series = [
            Bucket(start=start, **_bucket_counts(by_bucket.get(start), span.include_bots))
            for start in bucket_starts(span.start, span.end, span.interval)
        ]
        totals = Totals(all=all_clicks, human=human, bot=all_clicks - human)
        return totals, sum(bucket.unique_clicks for bucket in series), series

    async def _top(self, conn: AsyncConnection, code: str, span: _Range) -> TopLists:
        last_hour = span.end - timedelta(microseconds=1)
        rows = await conn.execute(
            _TOP,
            {
                "code": code,
                "first_day": span.start.date(),
                "last_day": last_hour.date(),
                "include_bots": span.include_bots,
                "limit": self.settings.top_n,
            },
        )
        lists: dict[str, list[TopEntry]] = {field: [] for field in _TOP_FIELDS.values()}
        for row in rows:
            lists[_TOP_FIELDS[row.dimension]].append(TopEntry(value=row.value, clicks=row.clicks))
        return TopLists(**lists)


def _bucket_counts(row: Any | None, include_bots: bool) -> dict[str, int]:
    if row is None:
        return {"clicks": 0, "unique_clicks": 0}
    if include_bots:
        return {"clicks": row.total, "unique_clicks": row.unique_human + row.unique_bot}
    return {"clicks": row.human, "unique_clicks": row.unique_human}
