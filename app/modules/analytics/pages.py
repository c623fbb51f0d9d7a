"""analytics' page: a link's statistics, read from the rollups as the API reads them.

`GET /stats/{code}` takes the API's query (`from`, `to`, `interval`, `include_bots`) from a
form of pickers, or from a quick range's link (the last 7, 30 or 90 days, today included);
the chart is drawn by the kernel's `chart.js` with the vendored uPlot from the series
written into the page (clicks, and unique clicks as a second line: both come per bucket
from the rollups, no other query), and the same numbers are in a table for anyone who
cannot see it.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.problems import Problem, validation_problem
from app.kernel.web import Pages, visitor
from app.modules.analytics.dimensions import DIMENSIONS
from app.modules.analytics.schemas import LinkStats, StatsQuery
from app.modules.analytics.service import InvalidRange, LinkNotFound, StatsService

_ANY_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as in routes.py
# A top list's heading and its column's name.
_TITLES = {
    "referers": ("Referers", "Referer"),
    "countries": ("Countries", "Country"),
    "cities": ("Cities", "City"),
    "browsers": ("Browsers", "Browser"),
    "os": ("Systems", "System"),
    "devices": ("Devices", "Device"),
}


def _not_found() -> Problem:
    return Problem(404, "You have no link with this code.", slug="link-not-found")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _query(request: Request) -> StatsQuery:
    """The API's query, but a date picker's `to` means the end of that day (the API's `to`
    is an exclusive instant)."""
    params = {key: value for key, value in request.query_params.items() if value != ""}
    if _DATE.fullmatch(params.get("to", "")):
        # A date that does not exist (or whose next day does not: 9999-12-31) is left for
        # the API's own check to name.
        with contextlib.suppress(ValueError, OverflowError):
            params["to"] = (date.fromisoformat(params["to"]) + timedelta(days=1)).isoformat()
    try:
        return StatsQuery.model_validate(params)
    except ValidationError as exc:
        raise validation_problem(exc, where="query") from exc


QUICK_RANGES = (7, 30, 90)


def quick_ranges(stats: LinkStats, today: date, hourly_limit: int) -> list[dict[str, object]]:
    """Links to the last N days, today included, keeping the interval and bots choice;
    hourly buckets become daily past the range the API allows them."""
    last_day = (stats.to - timedelta(microseconds=1)).date()
    ranges = []
    for days in QUICK_RANGES:
        first = today - timedelta(days=days - 1)
        interval = "day" if stats.interval == "hour" and days > hourly_limit else stats.interval
        query = {"from": first.isoformat(), "to": today.isoformat(), "interval": interval}
        if stats.include_bots:
            query["include_bots"] = "true"
        current = stats.from_.date() == first and last_day == today
        href = f"/stats/{stats.code}?{urlencode(query)}"
        ranges.append({"days": days, "href": href, "current": current})
    return ranges


def build_page_routes(service: StatsService, gate: Gate) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    async def link_stats(request: Request) -> Response:
        code: str = request.path_params["code"]
        principal = await visitor(gate, request, "stats:read")
        if isinstance(principal, Response):
            return principal
        if not _ANY_CODE.fullmatch(code):
            raise _not_found()
        query = _query(request)
        try:
            stats = await service.link_stats(principal.user_id, code, query)
        except LinkNotFound:
            raise _not_found() from None
        except InvalidRange as exc:
            raise Problem(422, f"{exc.field}: {exc.message}", slug="validation-error") from None
        tops = stats.top.model_dump()
        context = {
            "stats": stats,
            "quick": quick_ranges(
                stats, datetime.now(UTC).date(), service.settings.max_hourly_range_days
            ),
            "last_day": (stats.to - timedelta(microseconds=1)).date(),
            "tops": [
                (*_TITLES.get(d.top_list, (d.top_list, d.name)), tops[d.top_list])
                for d in DIMENSIONS
            ],
            "series": json.dumps(
                {
                    "t": [int(b.start.timestamp()) for b in stats.series],
                    "clicks": [b.clicks for b in stats.series],
                    "unique": [b.unique_clicks for b in stats.series],
                }
            ),
        }
        return pages.render(request, "stats.html", context, viewer=principal)

    return [Route("/stats/{code}", link_stats, methods=["GET"])]
