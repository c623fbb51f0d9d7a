"""The front door: the one route that does not need the framework goes around it.

`GET`/`HEAD` of a one-segment path (`/{code}`, the redirect) is handed straight to the one
module's ASGI app that answers such paths, unless a literal route of the app has that path
(`/healthz`, `/openapi.json`). Everything else goes to Starlette's router. It costs a few
string operations per request and saves the redirect the matching of every other route,
Starlette's Request and Response, and its middleware: most of what a cached redirect used
to cost. The door stands outside all of Starlette's middleware (`FrontedStarlette`), even
the one that turns an exception into a 500: the front app answers its own failures. A
front app with an express lane (express.py) is offered the same requests below ASGI first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from app.kernel.express import Express, ExpressApp, ExpressLane

_READS = frozenset({"GET", "HEAD"})
# The route template the front door's requests are counted under (app.kernel.metrics), set
# on the scope under this key: Starlette's router, which records its own, never sees them.
ROUTE_TEMPLATE = "encurta.route_template"
FRONT_ROUTE = "/{code}"


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the `root_path` it is mounted under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    # Only a whole leading segment is the root: "/s" is not the root of "/sabc".
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _fronted(path: str, literal: frozenset[str]) -> bool:
    return len(path) > 1 and path.find("/", 1) < 0 and path not in literal


class FrontDoor:
    def __init__(self, app: ASGIApp, front: ASGIApp, literal_paths: Collection[str]) -> None:
        self._app = app
        self._front = front
        self._literal = frozenset(literal_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in _READS
            and _fronted(route_path(scope), self._literal)
        ):
            scope[ROUTE_TEMPLATE] = FRONT_ROUTE
            await self._front(scope, receive, send)
            return
        await self._app(scope, receive, send)


class FrontedStarlette(Starlette):
    """Starlette with a front door (if `front` is given) outside its middleware stack, and
    `outermost`, if given, around both (the request metrics, which count the front door's
    requests too)."""

    def __init__(
        self,
        *,
        front: ASGIApp | None,
        literal_paths: Collection[str],
        outermost: Callable[[ASGIApp], ASGIApp] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._outermost = outermost
        self._front = front
        self._literal_paths = literal_paths
        self._literal = frozenset(literal_paths)
        # The server's protocol offers GET and HEAD requests to the front app's express
        # lane (app.kernel.express) on the paths the front door would send it.
        self.express: ExpressLane | None = None
        if isinstance(front, ExpressApp):
            self._express = front.express
            self.express = self._express_lane

    def _express_lane(self, scope: Scope) -> Express | None:
        if _fronted(route_path(scope), self._literal):
            return self._express(scope)
        return None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self._front is not None:
            stack = FrontDoor(stack, self._front, self._literal_paths)
        return stack if self._outermost is None else self._outermost(stack)
