"""uvicorn's httptools protocol with limits: head size and count, body size, slow clients.

httptools buffers a header line until it ends, so a 64 MiB header is 64 MiB of memory
before any callback can refuse it. The head is therefore counted in `data_received`,
before the parser sees the bytes: at most `max_header_bytes` of a request line and headers
are ever parsed. Past the limit the answer is 431, the write side is shut, and what the
client still sends is read and dropped for a moment (so it can read the answer rather
than a reset), then the connection closes.

Cost on a request that arrives in one read: a length comparison and two small callbacks;
no timer. A timer is armed only when a head or a body is incomplete at the end of a read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import TimerHandle
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.kernel.http import ENDLESS, UPLOAD_PATHS
from app.kernel.problems import PROBLEM_JSON, Problem
from app.kernel.server import ServerSettings

log = logging.getLogger(__name__)

# After refusing a request, how long and how much of the rest is read and dropped.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _size(count: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


def _seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits = ServerSettings()

    @classmethod
    def with_limits(cls, limits: ServerSettings) -> type[LimitedHttpToolsProtocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.limits
        self._max_head = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._max_body = limits.max_body_bytes
        self._max_upload = limits.upload_max_bytes
        self._head_seconds = limits.header_timeout_seconds
        self._body_seconds = limits.body_timeout_seconds
        self._upload_seconds = limits.upload_timeout_seconds
        self._body_started = 0.0  # loop time of the current body's first byte
        # True from the end of one message to the end of the next one's headers: the bytes
        # read meanwhile are the next head, and count against its budget.
        self._in_head = True
        self._head_bytes = 0
        self._heads = 0
        self._body_bytes = 0
        self._chunk_empty = False  # a chunk header was read, none of its data yet
        self._trailer_bytes = 0
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._refused = False
        self._dropped = 0
        self._linger_timer: TimerHandle | None = None

    # --- the transport's side ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn has no timer for a connection that never sends a byte.
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._drop(len(data))
            return
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if self._in_head:
            if len(data) > self._max_head - self._head_bytes:
                self._past_budget(data)
                return
            self._head_bytes += len(data)
        body_before = self._body_bytes
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            self._parse_failed(exc)
            return
        if self._in_head:
            if self._head_bytes and self._head_timer is None:
                self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)
            return
        if self._chunk_empty and self._body_bytes == body_before:
            # A read after a chunk header that brought no chunk data: the trailer fields
            # after the last chunk, which httptools buffers like headers.
            self._trailer_bytes += len(data)
            if self._trailer_bytes > self._max_head:
                self._refuse(
                    431,
                    f"The trailer fields are larger than {_size(self._max_head)}.",
                    slug="request-headers-too-large",
                )
                return
        if self._body_timer is None:
            self._body_started = self.loop.time()
            self._body_timer = self.loop.call_later(self._body_seconds, self._body_timed_out)

    def _uploading(self) -> bool:
        """An upload the app is still reading. Once it has answered (a 401 to a client
        without a token, a 429), the rest of the body is only drained, under the limits of
        any body: else anyone could hold a connection for the upload's hour and 1 GiB."""
        scope = getattr(self, "scope", None)
        if not (scope and scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS):
            return False
        return self.cycle is None or not self.cycle.response_complete

    def _past_budget(self, data: bytes) -> None:
        """This read takes the head past its budget: parse only up to the budget. Unless
        the head ends within it, the head is too large; if it does, go on with the rest
        (a body, or the next request, with a budget of its own)."""
        room = self._max_head - self._head_bytes
        heads = self._heads
        if room > 0:
            self._head_bytes += room
            if not self._feed(data[:room]):
                return
        if self._heads == heads:
            self._refuse(
                431,
                f"The request line and headers are larger than {_size(self._max_head)}.",
                slug="request-headers-too-large",
            )
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> bool:
        """Parse `data`; False when the connection is done with (refused, bad, upgraded)."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            self._parse_failed(exc)
            return False
        return True

    def _parse_failed(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        elif not self._refused:  # else a callback refused the request and answered
            # A client can send one per connection: a debug line, not a warning to flood with.
            self.logger.debug("Invalid HTTP request received.")
            self.send_400_response("The request is not valid HTTP/1.1.")

    def _unsupported_upgrade_warning(self) -> None:
        # No route speaks WebSocket (ws="none"): the request is answered as plain HTTP, and
        # a client must not be able to fill the log with two warnings per request.
        self.logger.debug("an Upgrade request, answered as plain HTTP")

    # --- the parser's callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        # A request parsed in the read that answered the one before it (the express lane
        # answers during the parse) must not run under that answer's keep-alive timer.
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        HttpToolsProtocol.on_message_begin(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A trailer field after a chunked body: dropped, never one of the request's
            # headers (a trailer X-Forwarded-For must not pick the client's address). Its
            # bytes still count against the head budget in `data_received`, which bounds
            # its lines too, so a count of them would guard nothing more.
            return
        HttpToolsProtocol.on_header(self, name, value)

    def on_headers_complete(self) -> None:
        if len(self.headers) > self._max_headers:
            self._refuse(
                431,
                f"The request has more than {self._max_headers} header lines.",
                slug="request-headers-too-large",
            )
            raise _Refused
        self._in_head = False
        self._heads += 1
        self._body_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._start_request()

    def on_chunk_header(self) -> None:  # chunked bodies only
        self._chunk_empty = True
        self._trailer_bytes = 0

    def on_chunk_complete(self) -> None:
        self._chunk_empty = False

    def _start_request(self) -> None:
        """The head is parsed and within the limits: uvicorn's ASGI cycle takes it."""
        HttpToolsProtocol.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._chunk_empty = False
        limit = self._max_upload if self._uploading() else self._max_body
        if self._body_bytes > limit:
            self._refuse(413, f"The body is larger than {_size(limit)}.", slug="body-too-large")
            raise _Refused
        HttpToolsProtocol.on_body(self, body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._end_request()

    def _end_request(self) -> None:
        """The request is all read: uvicorn's cycle has it whole."""
        HttpToolsProtocol.on_message_complete(self)

    # --- slow clients --------------------------------------------------------------------

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Still answering the previous request: the next head waits for us, not we for it.
            self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)
            return
        if not self._head_bytes:
            self.transport.close()  # an idle connection that never started a request
            return
        log.info("closing a connection whose request headers took too long")
        self._refuse(
            408,
            f"The request headers did not arrive within {_seconds(self._head_seconds)}.",
            slug="request-timeout",
            linger=False,
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self._in_head:
            return
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            # We stopped reading (the app has not asked for more), or the client waits for
            # our "100 Continue" before it sends: not the client's fault.
            self._body_timer = self.loop.call_later(self._body_seconds, self._body_timed_out)
            return
        allowed = self._upload_seconds if self._uploading() else self._body_seconds
        left = self._body_started + allowed - self.loop.time()
        if left > 0:
            self._body_timer = self.loop.call_later(left, self._body_timed_out)
            return
        log.info("closing a connection whose request body took too long")
        self._refuse(
            408,
            f"The request body did not arrive within {_seconds(allowed)}.",
            slug="request-timeout",
            linger=False,
        )

    # --- refusing ------------------------------------------------------------------------

    def _refuse(self, status: int, detail: str, *, slug: str, linger: bool = True) -> None:
        """Answer `status` unless a response to this request already started, end the
        request the app may be handling, and close (after a linger, if `linger`)."""
        if self._refused:
            return
        self._refused = True
        cycle = self.cycle
        if self._in_head or cycle is None:  # a head the app never saw
            # (a response to the previous request may still be under way)
            answer = cycle is None or cycle.response_complete
        else:
            answer = not cycle.response_started
        if answer:
            self._write_problem(Problem(status, detail, slug=slug))
        if cycle is not None and not cycle.response_complete:
            # The app's further sends are dropped and its next receive is a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        if status != 408:
            log.info("refused a request with %s: %s", status, detail)
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self.flow.resume_reading()
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _drop(self, count: int) -> None:
        self._dropped += count
        if self._dropped > LINGER_BYTES:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._refused = True
        self._write_problem(Problem(400, msg, slug="malformed-request"))
        self.transport.close()

    def _write_problem(self, problem: Problem) -> None:
        body = json.dumps(problem.to_dict()).encode()
        content = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: ",
            PROBLEM_JSON.encode(),
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown waits for every answer under way; one that never
        ends by itself (a stream of events, `mark_endless`) would hold it for as long as
        its client stays, so its connection is closed as if that client had left."""
        cycle = self.cycle
        scope = getattr(cycle, "scope", None)
        if cycle is not None and not cycle.response_complete and scope and scope.get(ENDLESS):
            self.transport.close()
            return
        super().shutdown()
