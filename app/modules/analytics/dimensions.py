"""The stats dimensions, named once.

Each is a set of rows in `url_dimension_stats` (its `name`), valued from one column of
`clicks` (clipped to a rollup key), and one top list of the stats response (`top_list`).
The table's check constraint, the rollups, the top-list query and the response schema
are all derived from this tuple.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    name: str  # url_dimension_stats.dimension
    column: str  # the clicks column its value is read from
    top_list: str  # its field of the response's `top`
    description: str | None = None  # of that field, in the API document


DIMENSIONS = (
    Dimension("referer", "referer_host", "referers", "Referer host names."),
    Dimension("country", "country", "countries", "ISO 3166-1 alpha-2 codes."),
    Dimension("city", "city", "cities"),
    Dimension("browser", "browser", "browsers"),
    Dimension("os", "os", "os"),
    Dimension("device", "device", "devices", "bot, tablet, mobile, desktop or other."),
)
