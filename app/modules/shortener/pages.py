"""The shortener's pages: the signed-in user's links, searched, and a form to shorten a URL.

The caller is whoever the session cookie names, through the module's Gate as for the API;
without a live session the browser is sent to auth's `/auth/refresh`, which renews it or
asks for a sign-in. A change (POST) made with the cookie passes the Gate's origin check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.problems import Problem
from app.kernel.tokens import Principal
from app.kernel.web import Pages, renew_session, visitor
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.redirect import not_found
from app.modules.shortener.schemas import CreateLink
from app.modules.shortener.service import CodeTaken, LinkNotFound, Links, OwnerDeleted
from app.modules.shortener.settings import ShortenerSettings

PER_PAGE = 20
Checked = Callable[[Request, str, str], str]


def build_page_routes(
    links: Links, gate: Gate, settings: ShortenerSettings, checked: Checked
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    async def listing(
        request: Request, owner: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        q = request.query_params.get("q", "").strip()[:200] or None
        tag = request.query_params.get("tag", "").strip()[:50] or None
        try:
            number = max(1, min(int(request.query_params.get("page", "1")), 100_000))
        except ValueError:
            number = 1
        page = await links.page(owner.user_id, number, PER_PAGE, q=q, tag=tag)
        context = {
            "base": base_url(request),
            "host": base_url(request).split("://", 1)[-1],
            "links": page.links,
            "total": page.total,
            "page": number,
            "pages": max(1, -(-page.total // PER_PAGE)),
            "q": q or "",
            "tag": tag or "",
            "created": request.query_params.get("created"),
            "deleted": request.query_params.get("deleted"),
            "url": "",
            "code": "",
            "title": "",
            "tags": "",
            "error": None,
            "errors": {},
            **values,
        }
        # htmx asks for the list alone when the search changes.
        name = "link_list.html" if request.headers.get("hx-request") else "links.html"
        return pages.render(request, name, context, viewer=owner, status_code=status_code)

    async def home(request: Request) -> Response:
        return RedirectResponse("/links", status_code=303)

    async def links_page(request: Request) -> Response:
        owner = await visitor(gate, request, "links:read")
        if isinstance(owner, Response):
            return owner
        return await listing(request, owner)

    async def create(request: Request) -> Response:
        owner = await visitor(gate, request, "links:write")
        if isinstance(owner, Response):
            return owner
        form = await request.form(max_files=0, max_fields=20)
        url = str(form.get("url", "")).strip()
        code = str(form.get("code", "")).strip()
        title = str(form.get("title", "")).strip()
        tags = str(form.get("tags", ""))

        async def again(status: int, errors: dict[str, str]) -> Response:
            kept = {"url": url, "code": code, "title": title, "tags": tags}
            return await listing(request, owner, status, errors=errors, **kept)

        try:
            body = CreateLink.model_validate(
                {
                    "url": url,
                    "code": code or None,
                    "title": title or None,
                    "tags": [t for t in tags.split(",") if t.strip()],
                }
            )
            target = checked(request, body.url, "url")
            link = await links.create(target, owner.user_id, body.code, None, body.title, body.tags)
        except ValidationError as exc:
            return await again(422, _field_errors(exc))
        except Problem as problem:
            errors = {e["field"]: e["message"] for e in problem.errors}
            return await again(problem.status, errors or {"url": problem.detail})
        except CodeTaken:
            return await again(409, {"code": f"The code '{code}' is taken."})
        except OwnerDeleted:
            return renew_session(request)
        return RedirectResponse(f"/links?created={quote(link.code)}", status_code=303)

    async def confirm_delete(request: Request) -> Response:
        owner = await visitor(gate, request, "links:read")
        if isinstance(owner, Response):
            return owner
        code = request.path_params["code"]
        try:
            link = await links.get(owner.user_id, _shaped(code))
        except LinkNotFound:
            raise not_found(code) from None
        context = {
            "host": base_url(request).split("://", 1)[-1],
            "code": link.code,
            "target": link.target_url,
        }
        return pages.render(request, "delete.html", context, viewer=owner)

    async def delete(request: Request) -> Response:
        owner = await visitor(gate, request, "links:write")
        if isinstance(owner, Response):
            return owner
        code = request.path_params["code"]
        try:
            await links.delete(owner.user_id, _shaped(code))
        except LinkNotFound:
            raise not_found(code) from None
        return RedirectResponse(f"/links?deleted={quote(code)}", status_code=303)

    return [
        Route("/", home, methods=["GET"]),
        Route("/links", links_page, methods=["GET"]),
        Route("/links", create, methods=["POST"]),
        Route("/links/{code}/delete", confirm_delete, methods=["GET"]),
        Route("/links/{code}/delete", delete, methods=["POST"]),
    ]


def _shaped(code: str) -> str:
    if not ANY_CODE.fullmatch(code):
        raise not_found(code)
    return code


def _field_errors(exc: ValidationError) -> dict[str, str]:
    return {
        str(item["loc"][0]) if item["loc"] else "url": str(item["msg"]).removeprefix(
            "Value error, "
        )
        for item in exc.errors(include_url=False, include_input=False)
    }
