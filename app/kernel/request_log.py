"""One log line per request the framework answers, and an `X-Request-Id` on its answer.

The redirect (`GET`/`HEAD /{code}`) never reaches Starlette's middleware: the front door
(front.py) and the express lane answer it first, so it gets no line and no id, and costs
nothing more. Everything else gets one line: method, route template (or the path when no
route matched), status, duration and, when the caller was authenticated, the account id.
Never the query string (it can carry an API key: the YOURLS API's `signature`), never the
client's address, never a header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.front import route_path
from app.kernel.logs import ACCOUNT_KEY, REQUEST_ID_KEY, request_id

log = logging.getLogger("encurta.request")

HEADER = b"x-request-id"
# An id the caller (or a proxy in front) sent is kept when it is short and plain.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_LONGEST_PATH = 200
# A path is percent-decoded by the server: `%0A` would start a forged line in the console
# format. Control characters are logged percent-encoded again.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Asked every few seconds by probes and scrapers (Docker's health check, Prometheus): their
# lines go at DEBUG unless they are refused or fail, or they would be most of the log.
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode("ascii") if _SAFE_ID.fullmatch(value) else None
    return None


def _encoded(control: re.Match[str]) -> str:
    return f"%{ord(control.group()):02X}"


class _Templates:
    """The route templates of an app, by endpoint: found once, then a dictionary look-up
    (Starlette records the endpoint it matched on the scope, not the route)."""

    def __init__(self) -> None:
        self._by_endpoint: dict[int, list[tuple[BaseRoute, str]]] | None = None

    def of(self, scope: Scope) -> str | None:
        endpoint = scope.get("endpoint")
        app = scope.get("app")
        if endpoint is None or app is None:
            return None
        if self._by_endpoint is None:
            self._by_endpoint = {}
            for route in getattr(app, "routes", ()):
                target = route.app if isinstance(route, Mount) else getattr(route, "endpoint", None)
                path = str(getattr(route, "path", ""))
                template = f"{path}/{{path}}" if isinstance(route, Mount) else path
                self._by_endpoint.setdefault(id(target), []).append((route, template))
        candidates = self._by_endpoint.get(id(endpoint), [])
        if len(candidates) == 1:
            return candidates[0][1]
        path = route_path(scope)
        for route, template in candidates:
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(path):
                return template
        return None


class RequestLog:
    """ASGI middleware: the request id (kept or made), its header, and the line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates = _Templates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = rid
        header = (HEADER, rid.encode("ascii"))
        status: int | None = None  # None: nothing was answered (the client left)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # not a cancellation: nobody is answered then
            if status is None:
                status = 500  # the 500 handler, outside this middleware, answers
            raise
        finally:
            self._line(scope, status, time.perf_counter() - started)
            request_id.reset(token)

    def _line(self, scope: Scope, status: int | None, seconds: float) -> None:
        route = self._templates.of(scope)
        fields: dict[str, Any] = {"method": scope["method"]}
        if route is None:
            fields["path"] = _CONTROL.sub(_encoded, route_path(scope)[:_LONGEST_PATH])
        else:
            fields["route"] = route
        fields["status"] = status
        fields["duration_ms"] = round(seconds * 1000, 2)
        account = scope.get(ACCOUNT_KEY)
        if account is not None:
            fields["account_id"] = account
        if status is not None and status >= 500:
            level = logging.ERROR
        elif route in _PROBES and status is not None and status < 400:
            level = logging.DEBUG  # a refused scrape (a wrong token) is worth a line
        else:
            level = logging.INFO
        log.log(
            level,
            "%s %s %s %.1f ms",
            fields["method"],
            route or fields["path"],
            "-" if status is None else status,
            fields["duration_ms"],
            extra=fields,
        )
