"""`GET`/`HEAD /{code}`: the redirect, as a plain ASGI app and an express lane.

What the product exists for, and it needs nothing of the framework: the kernel's front door
hands it the request before the router, and a cached link is answered with headers encoded
once per link. Served by `encurta serve`, the redirect of a cached link is answered in the
HTTP protocol itself, below ASGI (`express`, app.kernel.express); the ASGI app answers the
rest: a cache miss, a 404 or 410, a request with a body, and every request when no such
server runs (tests, another ASGI server).

The rare answers (404, 410, a code no link can have) go through the same problem+json
responses as every other route, and so does a failure: the front door sits
outside Starlette's error middleware, so this app answers its own. Starlette's router
reaches it too (the route documents it in the OpenAPI document), so the answer never
depends on who called.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.types import Receive, Scope, Send

from app.kernel.express import ExpressAnswer
from app.kernel.front import route_path
from app.kernel.problems import Problem, problem_response
from app.modules.shortener.clicks import ClickBatcher
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.edge import Edge
from app.modules.shortener.service import Links

log = logging.getLogger(__name__)

_EMPTY_BODY = {"type": "http.response.body", "body": b""}
# The detail stays generic, as every route's: an exception's text may hold data.
_FAILED = Problem(500, "The server failed to answer; the error is logged.")


def not_found(code: str) -> Problem:
    return Problem(404, f"There is no link '{code[:64]}'.", slug="link-not-found")


class Redirector:
    def __init__(self, links: Links, edge: Edge, batcher: ClickBatcher, status: int) -> None:
        self._links = links
        self._edge = edge
        self._batcher = batcher
        self._status = status
        self._status_line = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()

    def express(self, scope: Scope) -> ExpressAnswer | None:
        """The redirect of a cached live link, its click recorded as `__call__` records it;
        None for anything else, which `__call__` then answers."""
        code = route_path(scope)[1:]
        link = self._links.cached(code)
        if link is None or link.is_gone():
            return None
        head = self._status_line + link.redirect_lines
        if scope["method"] != "GET":  # a HEAD request fetches no page: not a click
            return ExpressAnswer(head)
        return ExpressAnswer(head, self._batcher.enqueue(self._edge.click(scope, code)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        code = route_path(scope)[1:]
        problem = _FAILED
        headers = None
        try:
            # Anything no code can be is answered at once: no cache entry, no query.
            link = await self._links.resolve(code) if ANY_CODE.fullmatch(code) else None
            if link is None:
                problem = not_found(code)
            elif link.is_gone():
                problem = Problem(
                    410, f"The link '{code}' has expired or was deleted.", slug="link-gone"
                )
            else:
                if scope["method"] == "GET":  # a HEAD request fetches no page: not a click
                    await self._batcher.record(self._edge.click(scope, code))
                headers = link.redirect_headers
        except Exception:
            log.exception("unhandled error on %s /%s", scope["method"], code[:64])
        if headers is None:
            await problem_response(problem)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self._status, "headers": headers})
        await send(_EMPTY_BODY)
