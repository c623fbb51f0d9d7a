"""The baseline of bench/redirect.py: a bare Starlette app answering the same 302 from a dict."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

LINKS = {"bench123": "https://example.com/landing"}


async def redirect(request: Request) -> Response:
    target = LINKS.get(request.path_params["code"])
    if target is None:
        return PlainTextResponse("not found", status_code=404)
    return Response(status_code=302, headers={"location": target, "cache-control": "no-store"})


app = Starlette(routes=[Route("/{code}", redirect)])
