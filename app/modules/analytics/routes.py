"""The stats HTTP API: query parameters in, JSON or problem+json out."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.exports import attachment, file_name
from app.kernel.http import json_response, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.modules.analytics.exports import (
    EXPORT_DESCRIPTION,
    ClickExport,
    ClickFilter,
    ClicksQuery,
)
from app.modules.analytics.live import LiveClicks, TooManyStreams
from app.modules.analytics.schemas import LinkStats, StatsQuery
from app.modules.analytics.service import InvalidRange, LinkNotFound, StatsService

# The shortener's rule for every code that can exist (generated or custom, past or
# present), restated here because modules share no code: a code outside it is no link of
# anyone's, answered 404 before the database is asked (which could not even hold a NUL).
_ANY_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
CODE_PARAMETER = {
    "type": "string",
    "pattern": f"^{_ANY_CODE.pattern}$",
    "description": "A short code: 1 to 64 of [A-Za-z0-9_-].",
}


def _not_found() -> Problem:
    # The same answer for unknown, deleted and others' links: codes do not leak.
    return Problem(404, "You have no link with this code.", slug="link-not-found")


_LIVE_DESCRIPTION = """\
Server-sent events (`text/event-stream`) of the link's clicks as analytics hears them, from
the moment of the request: an event `click` per click, its data JSON
`{"at", "country", "device", "browser", "referer_host", "bot"}` (never an IP or a user
agent); an event `missed` (`{"clicks": n}`) when the client read too slowly and lost the
oldest of them; a comment every 15 s to keep the connection open. The stream ends when the
link is deleted, and after 15 minutes, when the client reconnects and is authenticated again.
"""


def build_routes(service: StatsService, gate: Gate, live: LiveClicks) -> list[BaseRoute]:
    exporter = ClickExport(service.engine)

    async def link_stats(request: Request) -> Response:
        principal = await gate.authenticate(request, "stats:read")
        code: str = request.path_params["code"]
        if not _ANY_CODE.fullmatch(code):
            raise _not_found()
        query = read_query(request, StatsQuery)
        try:
            stats = await service.link_stats(principal.user_id, code, query)
        except LinkNotFound:
            raise _not_found() from None
        except InvalidRange as exc:
            raise invalid_fields([{"field": exc.field, "message": exc.message}], "query") from None
        return json_response(stats)

    async def live_clicks(request: Request) -> Response:
        principal = await gate.authenticate(request, "stats:read")
        code: str = request.path_params["code"]
        if not _ANY_CODE.fullmatch(code) or not await service.owns(principal.user_id, code):
            raise _not_found()
        try:
            stream = live.open(code, principal.user_id)
        except TooManyStreams:
            raise Problem(
                503, "Too many live streams are open here; try again later.", slug="busy"
            ) from None
        return live.response(stream)

    async def export_clicks(request: Request) -> Response:
        principal = await gate.authenticate(request, "stats:read")
        code: str = request.path_params["code"]
        if not _ANY_CODE.fullmatch(code):
            raise _not_found()
        query = read_query(request, ClicksQuery)
        if query.from_ and query.to and query.from_ > query.to:
            raise invalid_fields([{"field": "from", "message": "must not be after 'to'."}], "query")
        if not await service.owns(principal.user_id, code):
            raise _not_found()
        chosen = ClickFilter(
            owner_id=principal.user_id,
            code=code,
            start=query.from_,
            end=query.to,
            include_bots=query.include_bots,
        )
        name = file_name(f"clicks-{code}", query.format)
        return attachment(exporter.chunks(query.format, chosen), query.format, name)

    return [
        ApiRoute(
            "/api/stats/{code}",
            link_stats,
            method="GET",
            tag="analytics",
            auth=True,
            summary="A link's clicks over a range: totals, uniques, a series and top lists",
            query=StatsQuery,
            path_params={"code": CODE_PARAMETER},
            responses={
                200: LinkStats,
                401: "Missing or invalid access token",
                404: "No link of yours has this code",
                422: "Invalid query parameter",
            },
        ),
        ApiRoute(
            "/api/stats/{code}/clicks",
            export_clicks,
            method="GET",
            tag="analytics",
            auth=True,
            summary="Download a link's raw clicks, streamed, oldest first (JSONL or CSV)",
            description=EXPORT_DESCRIPTION,
            query=ClicksQuery,
            path_params={"code": CODE_PARAMETER},
            responses={
                200: "An attachment: application/x-ndjson or text/csv",
                401: "Missing or invalid access token",
                404: "No link of yours has this code",
                422: "Invalid query parameter",
            },
        ),
        ApiRoute(
            "/api/stats/{code}/live",
            live_clicks,
            method="GET",
            tag="analytics",
            auth=True,
            summary="A link's clicks as they happen, as server-sent events",
            description=_LIVE_DESCRIPTION,
            path_params={"code": CODE_PARAMETER},
            responses={
                200: "A text/event-stream of the link's clicks",
                401: "Missing or invalid access token",
                404: "No link of yours has this code",
                503: "Too many live streams are open in this process",
            },
        ),
    ]
