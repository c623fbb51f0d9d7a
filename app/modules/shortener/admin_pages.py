"""The shortener's admin pages: every user's links (disable, enable), blocked domains, and
the visits to codes that do not exist.

They call the same services as the JSON admin API (admin.py): `Links.page` over every
owner, `AdminLinks.set_disabled`, the `Blocklist`, `orphans.recent`; the same rules hold
(the reason's length, a domain's normal form). Only an admin gets a page; anyone else gets
the kernel's 403 error page. A change (POST) made with the cookie passes the Gate's origin
check, as every form does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.tokens import Principal
from app.kernel.web import Pages, read_form, visitor
from app.modules.shortener.admin import AdminLinks, ChangeLink
from app.modules.shortener.blocklist import Blocklist, InvalidDomain, normalise_domain
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.orphans import recent
from app.modules.shortener.redirect import not_found
from app.modules.shortener.service import LinkNotFound, Links

PER_PAGE = 20
ORPHANS_PER_PAGE = 100
ORPHAN_RANGES = (1, 7, 30, 90, 365)  # days; the API takes 1 to 400


def build_admin_page_routes(
    links: Links,
    admin_links: AdminLinks,
    blocklist: Blocklist,
    gate: Gate,
    public_url: str | None,
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    async def admin(request: Request) -> Principal | Response:
        principal = await visitor(gate, request, "admin")
        if isinstance(principal, Response):
            return principal
        principal.require_admin()
        return principal

    async def link_listing(
        request: Request, viewer: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        q, number = _search(request)
        found = await links.page(None, number, PER_PAGE, q=q)
        context = {
            "base": base_url(request),
            "host": base_url(request).split("://", 1)[-1],
            "links": found.links,
            # A link to a blocked domain answers 410 though it is not disabled: say so.
            "blocked": {
                link.code: blocklist.blocked_domain(link.target_url) for link in found.links
            },
            "total": found.total,
            "page": number,
            "pages": max(1, -(-found.total // PER_PAGE)),
            "q": q or "",
            # Statistics are their owner's: the Stats link is offered on the admin's own.
            "me": viewer.user_id,
            "disabled": request.query_params.get("disabled"),
            "enabled": request.query_params.get("enabled"),
            "failed": None,
            "reason": "",
            "error": None,
            **values,
        }
        # htmx asks for the list alone when the search changes.
        name = "admin_link_list.html" if request.headers.get("hx-request") else "admin_links.html"
        return pages.render(request, name, context, viewer=viewer, status_code=status_code)

    async def links_page(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        return await link_listing(request, principal)

    async def change(request: Request, disabled: bool) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        code = request.path_params["code"]
        if not ANY_CODE.fullmatch(code):
            raise not_found(code)
        form = await read_form(request, 5)
        # The form's action carries the list's search and page, to come back to them.
        back = {k: v for k in ("q", "page") if (v := request.query_params.get(k))}
        reason: str | None = None
        if disabled:
            typed = str(form.get("reason", ""))
            try:
                reason = ChangeLink(disabled=True, reason=typed).reason
            except ValidationError as exc:
                message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
                return await refused(request, principal, code, typed, message)
            if reason is None:
                message = "Give a reason: the link's visitors and its owner see it."
                return await refused(request, principal, code, typed, message)
        try:
            await admin_links.set_disabled(code, disabled, reason)
        except LinkNotFound:
            raise not_found(code) from None
        done = {"disabled" if disabled else "enabled": code}
        return RedirectResponse(f"/admin/links?{urlencode(back | done)}", status_code=303)

    async def refused(
        request: Request, principal: Principal, code: str, typed: str, message: str
    ) -> Response:
        return await link_listing(request, principal, 422, failed=code, reason=typed, error=message)

    async def disable(request: Request) -> Response:
        return await change(request, disabled=True)

    async def enable(request: Request) -> Response:
        return await change(request, disabled=False)

    async def domains_listing(
        request: Request, viewer: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        context = {
            "domains": await blocklist.list(),
            "viewer_id": viewer.user_id,
            "blocked": request.query_params.get("blocked"),
            "already": request.query_params.get("already"),
            "unblocked": request.query_params.get("unblocked"),
            "domain": "",
            "error": None,
            **values,
        }
        return pages.render(
            request, "admin_blocked_domains.html", context, viewer=viewer, status_code=status_code
        )

    async def domains_page(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        return await domains_listing(request, principal)

    async def block(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 5)
        typed = str(form.get("domain", ""))[:2048]
        try:
            domain = normalise_domain(typed)
        except InvalidDomain as exc:
            return await domains_listing(request, principal, 422, domain=typed, error=str(exc))
        _, new = await blocklist.block(domain, principal.user_id)
        said = urlencode({"blocked" if new else "already": domain})
        return RedirectResponse(f"/admin/blocked-domains?{said}", status_code=303)

    async def unblock(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 5)
        try:
            domain = normalise_domain(str(form.get("domain", ""))[:2048])
        except InvalidDomain:
            domain = ""
        # Not blocked (any more): the list shows it is gone either way.
        if domain:
            await blocklist.unblock(domain)
        said = urlencode({"unblocked": domain}) if domain else ""
        return RedirectResponse(f"/admin/blocked-domains?{said}", status_code=303)

    async def orphans_page(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        days = _number(request, "days", 30, 1, 400)
        number = _number(request, "page", 1, 1, 100_000)
        rows, total = await recent(admin_links.engine, days, number, ORPHANS_PER_PAGE)
        context = {
            "rows": rows,
            "total": total,
            "days": days,
            "ranges": sorted({*ORPHAN_RANGES, days}),
            "page": number,
            "pages": max(1, -(-total // ORPHANS_PER_PAGE)),
        }
        return pages.render(request, "admin_orphans.html", context, viewer=principal)

    return [
        Route("/admin/links", links_page, methods=["GET"]),
        Route("/admin/links/{code}/disable", disable, methods=["POST"]),
        Route("/admin/links/{code}/enable", enable, methods=["POST"]),
        Route("/admin/blocked-domains", domains_page, methods=["GET"]),
        Route("/admin/blocked-domains", block, methods=["POST"]),
        Route("/admin/blocked-domains/remove", unblock, methods=["POST"]),
        Route("/admin/orphans", orphans_page, methods=["GET"]),
    ]


def _search(request: Request) -> tuple[str | None, int]:
    q = request.query_params.get("q", "").strip()[:200] or None
    return q, _number(request, "page", 1, 1, 100_000)


def _number(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A page's number from the query, kept in range: a hand-typed URL is not an error."""
    try:
        return max(low, min(int(request.query_params.get(name, str(default))), high))
    except ValueError:
        return default
