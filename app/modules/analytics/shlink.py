"""The Shlink REST API v3's visits, answered by analytics, which keeps every click.

Under `/rest/v3/visits`, a prefix a proxy can send here: the visits summary
(`/rest/v3/visits`), the caller's visits of all their links (`/rest/v3/visits/non-orphan`)
and a short URL's visits at `/rest/v3/visits/short-urls/{code}`, where the shortener's
`/rest/v3/short-urls/{code}/visits` redirects once it has found the caller's link there (the
shortener keeps the rest of that prefix).
Orphan visits are the shortener's (`/rest/v3/visits/orphan`); this summary's `orphanVisits`
counts none of them, as analytics never hears of them.

Each visit is Shlink's Visit object from a stored click: no address is shown (encurta keeps
none raw), `visitedUrl` and `redirectUrl` are null (encurta does not keep them per click).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, false, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.shlink import (
    api_key_caller,
    atom,
    invalid_data,
    json_answer,
    page_numbers,
    pagination,
    shlink_endpoint,
    short_url_not_found,
    visits_summary,
    with_preflights,
)
from app.modules.analytics.service import StatsService
from app.modules.analytics.tables import clicks, url_creations, url_stats

PREFIX = "/rest/v3/visits"
_ANY_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as in routes.py
_TRUE = {"true", "1", "yes", "on"}


def _owned(owner_id: UUID) -> ColumnElement[bool]:
    live = select(url_creations.c.code).where(
        url_creations.c.owner_id == owner_id, url_creations.c.deleted_at.is_(None)
    )
    return clicks.c.code.in_(live.scalar_subquery())


def _moment(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
        # In UTC here, as asyncpg would: a time past datetime's range there is a 400, not
        # a 500 from the driver (year 1 at +14:00, 9999-12-31 at -14:00).
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise invalid_data({name: "Expected an ISO 8601 date or time."}) from None


def visit(row: Any) -> dict[str, Any]:
    """Shlink's Visit object from a row of `clicks`."""
    located = row.country or row.city
    location = (
        {
            "countryCode": row.country,
            "countryName": row.country,  # encurta keeps the code only
            "regionName": None,
            "cityName": row.city,
            "latitude": None,
            "longitude": None,
            "timezone": None,
            "isEmpty": False,
        }
        if located
        else None
    )
    return {
        "referer": row.referer or "",
        "date": atom(row.occurred_at),
        "userAgent": row.user_agent or "",
        "visitLocation": location,
        "potentialBot": row.is_bot,
        "visitedUrl": None,
        "redirectUrl": None,
    }


def build_shlink_routes(stats: StatsService, gate: Gate) -> list[BaseRoute]:
    async def paged(request: Request, chosen: list[ColumnElement[bool]]) -> Response:
        page, per_page = page_numbers(request, 20)
        start, end = _moment(request, "startDate"), _moment(request, "endDate")
        if start is not None:
            chosen.append(clicks.c.occurred_at >= start)
        if end is not None:
            chosen.append(clicks.c.occurred_at <= end)
        if request.query_params.get("excludeBots", "").lower() in _TRUE:
            chosen.append(clicks.c.is_bot.is_(False))
        async with stats.engine.connect() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(clicks).where(*chosen))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(clicks)
                    .where(*chosen)
                    .order_by(clicks.c.occurred_at.desc(), clicks.c.click_id)
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
            ).all()
        data = [visit(row) for row in rows]
        return json_answer(
            {"visits": {"data": data, "pagination": pagination(page, per_page, len(data), total)}}
        )

    async def short_url_visits(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "stats:read")
        code: str = request.path_params["code"]
        if not _ANY_CODE.fullmatch(code):
            raise short_url_not_found(code)
        if not await stats.owns(owner.user_id, code):
            # The shortener has answered 404 for a code that is no link of the caller's; here
            # it may be one analytics has not heard of yet: no visits (and nothing leaks).
            return await paged(request, [false()])
        return await paged(request, [clicks.c.code == code])

    async def non_orphan(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "stats:read")
        return await paged(request, [_owned(owner.user_id)])

    async def overview(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "stats:read")
        live = select(url_creations.c.code).where(
            url_creations.c.owner_id == owner.user_id, url_creations.c.deleted_at.is_(None)
        )
        totals = select(
            func.coalesce(func.sum(url_stats.c.total), 0),
            func.coalesce(func.sum(url_stats.c.bot), 0),
        ).where(url_stats.c.code.in_(live.scalar_subquery()))
        async with stats.engine.connect() as conn:
            total, bots = (await conn.execute(totals)).one()
        return json_answer(
            {
                "visits": {
                    "nonOrphanVisits": visits_summary(int(total), int(bots)),
                    "orphanVisits": visits_summary(0, 0),
                }
            }
        )

    return with_preflights(
        [
            Route(PREFIX, shlink_endpoint(overview), methods=["GET"]),
            Route(f"{PREFIX}/non-orphan", shlink_endpoint(non_orphan), methods=["GET"]),
            Route(
                f"{PREFIX}/short-urls/{{code}}", shlink_endpoint(short_url_visits), methods=["GET"]
            ),
        ]
    )
