"""The analytics module's section of the settings (`ENCURTA_ANALYTICS__...`)."""

from __future__ import annotations

from pydantic import Field

from app.kernel.settings import DatabaseSettings


class AnalyticsSettings(DatabaseSettings):
    top_n: int = Field(
        default=10, ge=1, le=100, description="Entries in each top list of the stats."
    )
    default_range_days: int = Field(
        default=30, ge=1, le=3660, description="The stats range when `from` is not given."
    )
    max_range_days: int = Field(
        default=3660, ge=1, le=36600, description="The longest range one stats query may span."
    )
    click_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Raw clicks older than this are deleted; unset: kept. The statistics "
        "(rollups) stay; the click export and the Shlink visit lists lose them.",
    )
    visitor_retention_days: int = Field(
        default=30,
        ge=1,
        description="Who was seen per link and day, kept to tell a late click's visitor "
        "new or not; longer than the replay horizon (ENCURTA_BUS__INBOX_TTL_SECONDS).",
    )
    max_hourly_range_days: int = Field(
        default=31,
        ge=1,
        le=366,
        description="The longest range with `interval=hour` (keeps a series to ~750 buckets).",
    )
