"""The server's side of the express lane (express.py): the protocol that offers requests to it.

A `GET` or `HEAD` without a body, when nothing is under way on its connection (answers go
out in the order of their requests) and the transport takes writes, is offered to the lane
as soon as its head is parsed and passed the limits (http_protocol.py), before uvicorn
makes its ASGI cycle. An answer the lane gives at once is written there and then; one that
is a future holds the connection's later requests, queued by uvicorn as behind any answer
under way, until it is done. uvicorn's own bookkeeping still runs after each answer
(`on_response_complete`: the count of requests, the queue, the keep-alive timer).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from time import perf_counter
from typing import TYPE_CHECKING, Any

import httptools

from app.kernel.express import Express, ExpressLane, ExpressResponse, problem_express
from app.kernel.http_protocol import LimitedHttpToolsProtocol
from app.kernel.problems import failed
from app.kernel.server import ServerSettings

if TYPE_CHECKING:
    from app.kernel.metrics import RequestMeter

log = logging.getLogger(__name__)

_FAILED = problem_express(failed())


class _Unawaited:
    """uvicorn sets its cycle's event to wake the ASGI app; no app waits on a held answer."""

    def set(self) -> None:
        pass


class _Held:
    """Stands for uvicorn's cycle while an express answer is a future not yet done: uvicorn
    then queues the requests that arrive meanwhile, as behind any answer under way."""

    response_started = False
    response_complete = False
    disconnected = False
    more_body = False
    waiting_for_100_continue = False
    message_event = _Unawaited()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive  # uvicorn's shutdown() turns it off


class ExpressHttpToolsProtocol(LimitedHttpToolsProtocol):
    lane: ExpressLane | None = None
    # Counts the lane's answers (app.kernel.metrics), which no ASGI middleware sees: a
    # dict update and a bisect per answer, and two clock readings.
    meter: RequestMeter | None = None

    @classmethod
    def serving(
        cls, limits: ServerSettings, lane: ExpressLane | None, meter: RequestMeter | None = None
    ) -> type[LimitedHttpToolsProtocol]:
        """The protocol for `limits`, with `lane` unless there is none or it is turned off."""
        if lane is None or not limits.express:
            return LimitedHttpToolsProtocol.with_limits(limits)
        return type(
            cls.__name__, (cls,), {"limits": limits, "lane": staticmethod(lane), "meter": meter}
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn writes its access log line in its ASGI send: with that log on, no lane.
        self._lane = None if self.access_log else self.lane
        self._answer: Express | None = None  # of the request being parsed
        self._defaults: object = None
        self._default_lines = b""
        self._method = ""  # of the answer under way, for the meter
        self._began = 0.0

    def _start_request(self) -> None:
        if self._lane is None or not self._offer(self._lane):
            super()._start_request()

    def _end_request(self) -> None:
        answer = self._answer
        if answer is None:
            super()._end_request()
            return
        self._answer = None
        keep_alive = self.scope["http_version"] != "1.0" and self.parser.should_keep_alive()
        head = self.scope["method"] == "HEAD"
        if isinstance(answer, ExpressResponse):
            self._write(answer, keep_alive, head)
            return
        held = _Held(keep_alive)
        # Requests parsed from here on are queued behind it. The first of them takes
        # uvicorn's `cycle` from the stand-in; uvicorn's shutdown and connection_lost then
        # mark that one, and `_write` finds a closing transport by itself.
        self.cycle = held  # type: ignore[assignment]
        # Among uvicorn's tasks, the answer counts against `limit_concurrency`, and a
        # graceful shutdown waits for it (and for the click it records) as for any request.
        self.tasks.add(answer)  # type: ignore[arg-type]
        answer.add_done_callback(self.tasks.discard)
        answer.add_done_callback(lambda done: self._release(done, held, head))

    def _offer(self, lane: ExpressLane) -> bool:
        """Offer the request whose head was just parsed to the express lane; True if it
        answers. Only when nothing is under way on the connection (answers go out in
        order) and the transport takes writes."""
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.pipeline:
            return False
        if self.flow.write_paused or self.parser.should_upgrade():
            return False
        method = self.parser.get_method()
        if method != b"GET" and method != b"HEAD":
            return False
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return False  # uvicorn's 503
        for name, _ in self.headers:
            if name == b"content-length" or name == b"transfer-encoding":
                return False  # a body: ASGI's
        # The scope as uvicorn completes it, for what the lane reads.
        scope = self.scope
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        scope["method"] = method.decode("ascii")
        scope["http_version"] = self.parser.get_http_version()
        scope["path"] = self.root_path + (urllib.parse.unquote(path) if "%" in path else path)
        scope["raw_path"] = self.root_path.encode("ascii") + url.path
        scope["query_string"] = url.query or b""
        if self.meter is not None:
            self._method = scope["method"]
            self._began = perf_counter()
        try:
            self._answer = lane(scope)  # type: ignore[arg-type]  # uvicorn types it apart
        except Exception:  # ASGI answers the request then, as it answers any failure
            log.exception("the express lane failed; the request goes through ASGI")
            return False
        return self._answer is not None

    def _release(self, done: asyncio.Future[ExpressResponse], held: _Held, head_only: bool) -> None:
        held.response_complete = True
        if done.cancelled() or done.exception() is not None:
            if not done.cancelled():
                log.error("the express lane failed", exc_info=done.exception())
            response = _FAILED
        else:
            response = done.result()
        if not held.disconnected:
            self._write(response, held.keep_alive, head_only)

    def _write(self, response: ExpressResponse, keep_alive: bool, head_only: bool) -> None:
        if self.transport.is_closing():
            return
        defaults = self.server_state.default_headers  # a new list each second: the date
        if defaults is not self._defaults:
            self._defaults = defaults
            self._default_lines = b"".join(
                name + b": " + value + b"\r\n" for name, value in defaults
            )
        end = b"\r\n" if keep_alive else b"connection: close\r\n\r\n"
        body = b"" if head_only else response.body
        self.transport.write(response.head + self._default_lines + end + body)
        meter = self.meter
        if meter is not None:
            # The status line's three digits: "HTTP/1.1 302 Found".
            meter.express(self._method, response.head[9:12], perf_counter() - self._began)
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()  # uvicorn's: count it, start what was queued, keep-alive
