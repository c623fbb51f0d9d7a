"""Paths under the shortener's prefix whose answer another module gives: a redirect there.

`GET /api/links/{code}/live`, a link's live clicks, is served by analytics, which hears the
clicks, at `/api/stats/{code}/live`: under analytics' own prefix, so a proxy in front of a
split deployment routes it by prefix like every other path. This answers the link's path
with a redirect to it (an EventSource, like most clients, follows it, and keeps its cookie
and Authorization on the same origin); no module calls another. The redirect is the same
for every code of the right shape, anyone's or none: analytics decides who may see what.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.openapi import ApiRoute
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.redirect import not_found
from app.modules.shortener.routes import CODE_PARAMETER


def build_moved_routes() -> list[BaseRoute]:
    async def live(request: Request) -> Response:
        code: str = request.path_params["code"]
        if not ANY_CODE.fullmatch(code):
            raise not_found(code)
        return Response(status_code=307, headers={"Location": f"/api/stats/{code}/live"})

    return [
        ApiRoute(
            "/api/links/{code}/live",
            live,
            method="GET",
            tag="links",
            summary="A link's clicks as they happen: a redirect to /api/stats/{code}/live",
            path_params={"code": CODE_PARAMETER},
            responses={
                307: "Served by analytics at /api/stats/{code}/live",
                404: "No code can be this one",
            },
            headers={307: {"Location": "/api/stats/{code}/live"}},
        ),
    ]
