"""The express lane: a request answered by the HTTP protocol itself, below ASGI.

The front door (front.py) takes `GET`/`HEAD /{code}` around Starlette, yet ASGI itself
still cost a cached redirect more than its click: per request, uvicorn makes a task, a
request-response cycle with an event of its own, two messages, and checks each header of
the answer against two patterns. So a front app may also offer an express lane, a plain
function that the server's protocol (http_protocol.py) calls as soon as the head of a
`GET` or `HEAD` request without a body is parsed. It gets the request's scope (method,
path, raw_path, query_string, headers, client, root_path: what the ASGI app would get) and
answers the response's head, at once or once a future is done (a click committed), or
None to have the request served through ASGI as usual: a cache miss, a 404, anything rare.

The answer has no body. The protocol adds the server's default headers (`date`), the
connection's framing, and keeps answers in the order of their requests, as uvicorn does.
Measured with bench/redirect.py (`--variant ENCURTA_SERVER__EXPRESS=false`): the redirect
went from 0.62x to 0.83x of bare Starlette answering before the commit, and from 0.46x to
0.56x answering after it, in the same runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

from starlette.types import Receive, Scope, Send


class ExpressAnswer(NamedTuple):
    head: bytes  # the status line and header lines, each ending in CRLF
    after: asyncio.Future[None] | None = None  # written once this is done, if given


ExpressLane = Callable[[Scope], ExpressAnswer | None]


@runtime_checkable
class ExpressApp(Protocol):
    """An ASGI app that answers its commonest requests in the express lane too."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def express(self, scope: Scope) -> ExpressAnswer | None: ...
