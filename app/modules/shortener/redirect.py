"""`GET`/`HEAD /{code}`: the redirect, as a plain ASGI app and an express lane.

What the product exists for, and it needs nothing of the framework: the kernel's front door
hands it the request before the router, and a cached link is answered with headers encoded
once per link. Served by `encurta serve`, it answers in the HTTP protocol itself, below
ASGI (`express`, app.kernel.express), with the same answers; through ASGI it answers a
request with a body, one pipelined behind another, and every request when no such server
runs (tests, another ASGI server).

The rare answers (404, 410, a code no link can have) go through the same problem+json
responses as every other route (a browser gets a 404 or 410 as a page in the app's layout,
as from every route), and so does a failure: the front door sits
outside Starlette's error middleware, so this app answers its own. Starlette's router
reaches it too (the route documents it in the OpenAPI document), so the answer never
depends on who called.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import Receive, Scope, Send

from app.kernel.express import Express, ExpressResponse, problem_express, status_line
from app.kernel.front import route_path
from app.kernel.problems import Problem, failed, problem_response
from app.modules.shortener.cache import CachedLink
from app.modules.shortener.clicks import ClickBatcher
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.edge import Edge
from app.modules.shortener.limits import ScanGuard
from app.modules.shortener.orphans import OrphanTally
from app.modules.shortener.protection import Page, challenge, for_browser
from app.modules.shortener.rules import pick
from app.modules.shortener.service import Links

log = logging.getLogger(__name__)

_EMPTY_BODY = {"type": "http.response.body", "body": b""}


def not_found(code: str) -> Problem:
    return Problem(404, f"There is no link '{code[:64]}'.", slug="link-not-found")


def gone(code: str) -> Problem:
    return Problem(410, f"The link '{code[:64]}' has expired or was deleted.", slug="link-gone")


class Redirector:
    def __init__(
        self,
        links: Links,
        edge: Edge,
        batcher: ClickBatcher,
        status: int,
        orphans: OrphanTally | None = None,
        guard: ScanGuard | None = None,
    ) -> None:
        self.orphans = orphans  # counts visits to codes that do not exist
        self.guard = guard  # unknown codes per client (scanning); None: unlimited
        self._blocked = guard.blocked if guard is not None else {}  # clients it refuses
        self._links = links
        self._edge = edge
        self._batcher = batcher
        self._status = status
        self._status_line = status_line(status)

    def express(self, scope: Scope) -> Express:
        """The answer `__call__` gives, in the express lane: a cached live link's redirect
        at once (or once its click committed), anything else once looked up."""
        code = route_path(scope)[1:]
        link = self._links.cached(code)
        # While a client is refused for scanning, every request is looked at in full.
        if link is None or link.guarded or link.is_gone() or self._blocked:
            return asyncio.create_task(self._express_later(scope, code))
        lines = link.lines_for(scope["query_string"]) if link.forward_query else link.redirect_lines
        response = ExpressResponse(self._status_line + lines)
        if scope["method"] != "GET":  # a HEAD request fetches no page: not a click
            return response
        committed = self._batcher.enqueue(self._edge.click(scope, code), response)
        return response if committed is None else committed

    async def _express_later(self, scope: Scope, code: str) -> ExpressResponse:
        outcome = await self._outcome(scope, code)
        if isinstance(outcome, Problem):
            outcome = for_browser(scope, outcome)
        if isinstance(outcome, Problem):
            return problem_express(outcome)
        if isinstance(outcome, Page):
            return outcome.express()
        return ExpressResponse(self._status_line + outcome.lines_for(scope["query_string"]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = await self._outcome(scope, route_path(scope)[1:])
        if isinstance(outcome, Problem):
            outcome = for_browser(scope, outcome)
        if isinstance(outcome, Problem):
            await problem_response(outcome)(scope, receive, send)
            return
        if isinstance(outcome, Page):
            await outcome.send(scope, send)
            return
        headers = outcome.headers_for(scope["query_string"])
        await send({"type": "http.response.start", "status": self._status, "headers": headers})
        await send(_EMPTY_BODY)

    async def unlocked(self, scope: Scope, code: str) -> CachedLink | Problem:
        """`_outcome` of a request that gave the link's right password (`POST /{code}`)."""
        outcome = await self._outcome(scope, code, unlocked=True)
        assert not isinstance(outcome, Page)
        return outcome

    async def _outcome(
        self, scope: Scope, code: str, *, unlocked: bool = False
    ) -> CachedLink | Problem | Page:
        """The link to redirect to (aimed by its rules), its click recorded (and committed,
        by default), or the problem or page to answer."""
        try:
            guard = self.guard
            if (
                self._blocked
                and guard is not None
                and guard.blocking
                and (refused := guard.refused(scope))
            ):
                return refused  # scanning: refused every code until its window ends
            # Anything no code can be is answered at once: no cache entry, no query.
            link = await self._links.resolve(code) if ANY_CODE.fullmatch(code) else None
            if link is None or link.is_pending():
                if link is None and self.orphans is not None:
                    self.orphans.hit(code)
                # Only a code that could exist is counted: one that cannot reveals nothing.
                if guard is not None and link is None and ANY_CODE.fullmatch(code):
                    refused = await guard.missed(scope)
                    if refused is not None:
                        return refused
                return not_found(code)
            if link.refused is not None:
                return Problem(410, link.refused, slug="link-disabled")
            if link.is_gone():
                return gone(code)
            if link.has_password and not unlocked:  # bots too: no password, no redirect
                return challenge(scope, code)
            if link.max_visits is not None and not await self._visit_allowed(scope, code):
                return Problem(410, f"The link '{code}' has had all its visits.", slug="link-gone")
            if scope["method"] != "HEAD":  # a HEAD request fetches no page: not a click
                await self._batcher.record(self._edge.click(scope, code))
            if link.rules:
                return link.aimed(pick(link.rules, scope, lambda: self._edge.country(scope)))
            return link
        except Exception:
            log.exception("unhandled error on %s /%s", scope["method"], code[:64])
            return failed()

    async def _visit_allowed(self, scope: Scope, code: str) -> bool:
        """A person's visit uses one of the link's visits, if one is left; a bot's visit,
        or a HEAD request, is let through while one is left, and uses none."""
        if scope["method"] != "HEAD" and not self._edge.is_bot(scope):
            return await self._links.use_visit(code)
        return await self._links.has_visits_left(code)
