"""The stats HTTP API: query parameters in, JSON or problem+json out."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import json_response, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
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


def build_routes(service: StatsService, gate: Gate) -> list[BaseRoute]:
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
    ]
