"""The stats API's query and response."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
)

from app.modules.analytics.dimensions import DIMENSIONS

Interval = Literal["hour", "day", "week"]

# Wide enough for any real range, narrow enough that bucket arithmetic cannot overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)

# ISO 8601 as a query gives it: a date, or a date and time with an optional offset.
# Nothing else: not a Unix time, which pydantic would make of `20240501`.
_TIME = (
    r"-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_ISO_TIME = re.compile(r"[0-9]{4}" + _TIME)
QueryTime = Annotated[
    datetime | None,
    WithJsonSchema(
        {
            "type": "string",
            # The document states the year range too (the validator below says it apart).
            "pattern": f"^(19[7-9][0-9]|[2-8][0-9]{{3}}){_TIME}$",
            "description": "ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00:00Z; UTC when "
            "no offset; from 1970 to 9000.",
        }
    ),
]


def iso_8601(value: Any) -> Any:
    """A time given as text is ISO 8601 (not a Unix time, which pydantic would accept)."""
    if isinstance(value, str) and not _ISO_TIME.fullmatch(value):
        raise ValueError("Use ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00:00Z.")
    return value


def in_utc(value: datetime | None) -> datetime | None:
    """UTC when no offset is given; from 1970 to 9000."""
    if value is None:
        return None
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00 is before year 1 in UTC: pydantic would 500
        raise ValueError("must be between 1970-01-01 and 9000-01-01") from None
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("must be between 1970-01-01 and 9000-01-01")
    return value


class StatsQuery(BaseModel):
    """`?from=&to=&interval=&include_bots=`; times are ISO 8601, UTC when no offset."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True)

    from_: QueryTime = Field(default=None, alias="from")
    to: QueryTime = None
    interval: Interval = Field(default="day", description="The width of a series bucket.")
    include_bots: bool = Field(
        default=False, description="Count bots in the series, uniques and top lists too."
    )

    _iso_8601 = field_validator("from_", "to", mode="before")(iso_8601)
    _in_utc = field_validator("from_", "to")(in_utc)


class Totals(BaseModel):
    all: int
    human: int
    bot: int


class Bucket(BaseModel):
    start: AwareDatetime = Field(description="Start of the bucket, in UTC.")
    clicks: int
    unique_clicks: int = Field(
        description="Visitors first seen that day, counted in the bucket of their first "
        "click; a week adds up its days."
    )


class TopEntry(BaseModel):
    value: str
    clicks: int


_TOP_LISTS_DOC = (
    "The most frequent values, most clicks first (ties by value). Counted over whole UTC\n"
    "days, every day that overlaps the range, even partly: these rollups are daily.\n"
    "Absent values read `unknown`; a click without a referer reads `direct`."
)

# One list per stats dimension, in their order, so that a dimension is named in one place.
if TYPE_CHECKING:
    TopLists = BaseModel
else:
    TopLists = create_model(
        "TopLists",
        __doc__=_TOP_LISTS_DOC,
        __module__=__name__,
        **{d.top_list: (list[TopEntry], Field(description=d.description)) for d in DIMENSIONS},
    )


class LinkStats(BaseModel):
    """A link's clicks over a range, from rollups. The range is taken in whole UTC hours
    (every hour that overlaps `[from, to)`), the top lists in whole UTC days (every day
    that overlaps it). Bots are left out of `unique_clicks`, `series` and `top` unless
    `include_bots`; `totals` always shows all clicks split into human and bot."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    code: str
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime
    interval: Interval
    include_bots: bool
    totals: Totals
    unique_clicks: int = Field(
        description="The sum over the range's days of each day's distinct visitors."
    )
    series: list[Bucket] = Field(
        description="One bucket per hour, day or week (weeks start on Monday), in UTC, "
        "empty ones included."
    )
    top: TopLists
