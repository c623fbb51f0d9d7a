"""uvicorn with encurta's server limits around a tiny app, in a process of its own (so a
test can read its memory): `python -m tests.kernel.limited_server PORT SETTINGS_JSON`.

GET / and /readyz answer "ok"; POST /json reads the body with the kernel's `read_json`; POST /raw
reads the whole body, as a route without a limit of its own would; POST /headers reads the
body, then answers the request's headers as the app sees them; POST /api/imports (an
upload path) answers 401 without reading the body.

Its express lane (app.kernel.express) answers `GET`/`HEAD /now...` at once with a 302 that
names the path and query it saw (and a body), holds `/held...` until `POST /release` (which
answers how many it released), answers `/later` half a second on (and logs it), fails on
`/boom` and later on `/fails-later`; ASGI answers everything else.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from app.kernel.express import Express, ExpressResponse
from app.kernel.http import read_json
from app.kernel.problems import EXCEPTION_HANDLERS
from app.kernel.server import ServerSettings, uvicorn_options


class Echo(BaseModel):
    text: str = ""


async def hello(request: Request) -> Response:
    return PlainTextResponse("ok")


async def echo(request: Request) -> Response:
    body = await read_json(request, Echo)
    return JSONResponse({"text": body.text})


async def raw(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())})


async def headers(request: Request) -> Response:
    await request.body()  # trailers, if any, arrive after the body
    return JSONResponse([[k.decode(), v.decode()] for k, v in request.headers.raw])


HELD: list[tuple[asyncio.Future[ExpressResponse], ExpressResponse]] = []


def lane(scope: Scope) -> Express | None:
    path: str = scope["path"]
    response = ExpressResponse(
        b"HTTP/1.1 302 Found\r\nlocation: /there\r\ncontent-length: 5\r\n"
        b"x-path: " + path.encode() + b"\r\nx-query: " + scope["query_string"] + b"\r\n",
        b"there",
    )
    if path.startswith("/now"):
        return response
    if path.startswith("/held"):
        HELD.append((asyncio.get_running_loop().create_future(), response))
        return HELD[-1][0]
    if path == "/later":
        later: asyncio.Future[ExpressResponse] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.5, later.set_result, response)
        later.add_done_callback(lambda _: print("answered /later", file=sys.stderr, flush=True))
        print("holding /later", file=sys.stderr, flush=True)
        return later
    if path == "/boom":
        raise RuntimeError("the lane broke")
    if path == "/fails-later":
        failed: asyncio.Future[ExpressResponse] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("the answer broke"))
        return failed
    return None


async def refuse_upload(request: Request) -> Response:
    """As POST /api/imports answers a client without a token: before reading the body."""
    return JSONResponse({"detail": "no token"}, status_code=401)


async def release(request: Request) -> Response:
    for held, response in HELD:
        held.set_result(response)
    count = len(HELD)
    HELD.clear()
    return JSONResponse({"released": count})


app = Starlette(
    routes=[
        Route("/release", release, methods=["POST"]),
        Route("/", hello),
        Route("/readyz", hello),
        Route("/json", echo, methods=["POST"]),
        Route("/raw", raw, methods=["POST"]),
        Route("/headers", headers, methods=["POST"]),
        Route("/api/imports", refuse_upload, methods=["POST"]),  # an upload path
    ],
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)


def main() -> None:
    port, limits = int(sys.argv[1]), ServerSettings.model_validate_json(sys.argv[2])
    logging.basicConfig(
        level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    options = uvicorn_options(limits, lane)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False, **options)


if __name__ == "__main__":
    main()
