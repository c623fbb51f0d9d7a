"""The stats HTTP API: query parameters in, JSON or problem+json out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.http import json_response, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.tokens import authenticate
from app.modules.analytics.schemas import LinkStats, StatsQuery
from app.modules.analytics.service import InvalidRange, LinkNotFound, StatsService


def build_routes(service: StatsService) -> list[BaseRoute]:
    async def link_stats(request: Request) -> Response:
        principal = await authenticate(request)
        query = read_query(request, StatsQuery)
        try:
            stats = await service.link_stats(
                principal.user_id, request.path_params["code"], query
            )
        except LinkNotFound:
            # The same answer for unknown, deleted and others' links: codes do not leak.
            raise Problem(404, "You have no link with this code.", slug="link-not-found") from None
        except InvalidRange as exc:
            raise invalid_fields([{"field": exc.field, "message": exc.message}], "query") from None
        return json_response(stats)

    return [
        ApiRoute(
            "/api/stats/{code}", link_stats, method="GET", tag="analytics", auth=True,
            summary="A link's clicks over a range: totals, uniques, a series and top lists "
                    "(query: from, to, interval=hour|day|week, include_bots)",
            responses={200: LinkStats, 401: "Missing or invalid access token",
                       404: "No link of yours has this code", 422: "Invalid query parameter"},
        ),
    ]
