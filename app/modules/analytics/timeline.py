"""Buckets of a stats series, in UTC: hours, days, and weeks that start on Monday (the
same as PostgreSQL's `date_trunc('week', ...)`, which groups the rollups)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.modules.analytics.schemas import Interval

_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_of(moment: datetime, interval: Interval) -> datetime:
    """The start of the bucket that holds `moment` (an aware UTC time)."""
    hour = floor_hour(moment)
    if interval == "hour":
        return hour
    day = hour.replace(hour=0)
    if interval == "day":
        return day
    return day - timedelta(days=day.weekday())


def bucket_starts(start: datetime, end: datetime, interval: Interval) -> list[datetime]:
    """Every bucket that holds an hour of `[start, end)`, in order."""
    starts: list[datetime] = []
    current = bucket_of(start, interval)
    while current < end:
        starts.append(current)
        current += _STEP[interval]
    return starts
