"""The express lane: a request answered by the HTTP protocol itself, below ASGI.

The front door (front.py) takes `GET`/`HEAD /{code}` around Starlette, yet ASGI itself
still cost a redirect more than its click: per request, uvicorn makes a task, a
request-response cycle with an event of its own, two messages, and checks each header of
the answer against two patterns. So a front app may also offer an express lane, a plain
function that the server's protocol (express_protocol.py) calls as soon as the head of a
`GET` or `HEAD` request without a body is parsed. It gets the request's scope (method,
path, raw_path, query_string, headers, client, root_path: what the ASGI app would get) and
returns the response, or a future of it (a link to look up, a click to commit), or None to
have the request served through ASGI as usual.

The protocol adds the server's default headers (`date`) and the connection's framing,
leaves the body out for `HEAD`, answers 500 if the future fails, and keeps answers in the
order of their requests, as uvicorn does.
Measured with bench/redirect.py (`--variant ENCURTA_SERVER__EXPRESS=false`): in a quiet
hour the redirect went from 0.64x to 0.81x of bare Starlette answering before the commit,
and from 0.57x to 0.68x answering after it, in the same runs; in a busy one, where wrk's
core (shared with PostgreSQL) was the bound and not the server's, it made no difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import NamedTuple, Protocol, runtime_checkable

from starlette.types import Receive, Scope, Send

from app.kernel.problems import Problem, problem_response


class ExpressResponse(NamedTuple):
    head: bytes  # the status line and header lines, each ending in CRLF
    body: bytes = b""


Express = ExpressResponse | asyncio.Future[ExpressResponse]
ExpressLane = Callable[[Scope], Express | None]


@runtime_checkable
class ExpressApp(Protocol):
    """An ASGI app that also answers its requests in the express lane."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def express(self, scope: Scope) -> Express | None: ...


def status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()


def problem_express(problem: Problem) -> ExpressResponse:
    """`problem` as every route answers it (problem_response), as bytes."""
    response = problem_response(problem)
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
    return ExpressResponse(status_line(problem.status) + lines, bytes(response.body))
