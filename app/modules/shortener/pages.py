"""The shortener's pages: the signed-in user's links (searched, sorted), a form to shorten a
URL with every option the API has, and one to edit a link.

The caller is whoever the session cookie names, through the module's Gate as for the API;
without a live session the browser is sent to auth's `/auth/refresh`, which renews it or
asks for a sign-in. A change (POST) made with the cookie passes the Gate's origin check.
"""

from __future__ import annotations

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
from app.kernel.web import Pages, read_form, renew_session, visitor
from app.modules.shortener import link_forms as forms
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.editing import LinkEditor
from app.modules.shortener.link_forms import DEVICES
from app.modules.shortener.redirect import not_found
from app.modules.shortener.schemas import CreateLink, UpdateLink
from app.modules.shortener.service import CodeTaken, Link, LinkNotFound, Links, OwnerDeleted
from app.modules.shortener.settings import ShortenerSettings

PER_PAGE = 20
# The orders Links.page knows (the API's `sort`), as the list's Sort offers them.
SORTS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-click_count": "Most clicks",
    "click_count": "Fewest clicks",
}
DEFAULT_SORT = "-created_at"


def build_page_routes(
    links: Links, gate: Gate, settings: ShortenerSettings, editor: LinkEditor
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    async def listing(
        request: Request, owner: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        q = request.query_params.get("q", "").strip()[:200] or None
        tag = request.query_params.get("tag", "").strip()[:50] or None
        sort = request.query_params.get("sort", "")
        sort = sort if sort in SORTS else DEFAULT_SORT
        try:
            number = max(1, min(int(request.query_params.get("page", "1")), 100_000))
        except ValueError:
            number = 1
        page = await links.page(owner.user_id, number, PER_PAGE, q=q, tag=tag, sort=sort)
        context = {
            "base": base_url(request),
            "host": base_url(request).split("://", 1)[-1],
            "links": page.links,
            "total": page.total,
            "page": number,
            "pages": max(1, -(-page.total // PER_PAGE)),
            "q": q or "",
            "tag": tag or "",
            "sort": sort,
            "sorts": SORTS.items(),
            "devices": DEVICES,
            "created": request.query_params.get("created"),
            "deleted": request.query_params.get("deleted"),
            "updated": request.query_params.get("updated"),
            "form": forms.blank_form(),
            "open_options": False,
            "errors": {},
            **values,
        }
        context["rules_open"] = forms.rules_open(context["form"]["rules"], context["errors"])
        # htmx asks for the list alone when the search or the order changes.
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
        form = await read_form(request, forms.MAX_FIELDS)
        typed = forms.typed(form)
        password = str(form.get("password", ""))

        async def again(status: int, errors: dict[str, str]) -> Response:
            shown = {**typed, "rules": forms.with_empty_rows(typed["rules"])}
            return await listing(
                request, owner, status, errors=errors, form=shown, open_options=_opened(typed)
            )

        try:
            data = forms.body(typed) | {"code": typed["code"] or None, "password": password or None}
            link = await editor.create(request, owner.user_id, CreateLink.model_validate(data))
        except forms.FormError as exc:
            return await again(422, exc.errors)
        except ValidationError as exc:
            return await again(422, forms.schema_errors(exc))
        except Problem as problem:
            response = await again(problem.status, _problem_errors(problem))
            response.headers.update(problem.headers)  # a rate limit's Retry-After, RateLimit
            return response
        except CodeTaken:
            return await again(409, {"code": f"The code '{typed['code']}' is taken."})
        except OwnerDeleted:
            return renew_session(request)
        return RedirectResponse(f"/links?created={quote(link.code)}", status_code=303)

    def edit_page(
        request: Request,
        owner: Principal,
        link: Link,
        form: dict[str, Any],
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        context = {
            "host": base_url(request).split("://", 1)[-1],
            "code": link.code,
            "has_password": link.has_password,
            "devices": DEVICES,
            "form": {**form, "rules": forms.with_empty_rows(form["rules"])},
            "errors": errors or {},
            "rules_open": forms.rules_open(form["rules"], errors or {}),
        }
        return pages.render(request, "edit.html", context, viewer=owner, status_code=status_code)

    async def own_link(owner: Principal, code: str) -> Link:
        try:
            return await links.get(owner.user_id, _shaped(code))
        except LinkNotFound:
            raise not_found(code) from None

    async def edit_form(request: Request) -> Response:
        owner = await visitor(gate, request, "links:read")
        if isinstance(owner, Response):
            return owner
        link = await own_link(owner, request.path_params["code"])
        return edit_page(request, owner, link, forms.link_values(link))

    async def edit(request: Request) -> Response:
        owner = await visitor(gate, request, "links:write")
        if isinstance(owner, Response):
            return owner
        link = await own_link(owner, request.path_params["code"])
        form = await read_form(request, forms.MAX_FIELDS)
        typed = forms.typed(form)
        password = str(form.get("password", ""))
        try:
            if typed["remove_password"] and password:
                # Which one was meant? Not the one that leaves the link open.
                both = "Remove the password or give a new one, not both."
                raise forms.FormError({"password": both})
            data = forms.body(typed)
            names = forms.changed(data, typed, forms.link_values(link))
            if typed["remove_password"] or password:
                data["password"] = None if typed["remove_password"] else password
                names.add("password")
            body = UpdateLink.model_validate({name: data[name] for name in names})
            await editor.change(request, owner.user_id, link.code, body)
        except forms.FormError as exc:
            return edit_page(request, owner, link, typed, exc.errors, 422)
        except ValidationError as exc:
            return edit_page(request, owner, link, typed, forms.schema_errors(exc), 422)
        except Problem as problem:
            errors = _problem_errors(problem)
            return edit_page(request, owner, link, typed, errors, problem.status)
        except LinkNotFound:
            raise not_found(link.code) from None
        return RedirectResponse(f"/links?updated={quote(link.code)}", status_code=303)

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
        Route("/links/{code}/edit", edit_form, methods=["GET"]),
        Route("/links/{code}/edit", edit, methods=["POST"]),
        Route("/links/{code}/delete", confirm_delete, methods=["GET"]),
        Route("/links/{code}/delete", delete, methods=["POST"]),
    ]


def _shaped(code: str) -> str:
    if not ANY_CODE.fullmatch(code):
        raise not_found(code)
    return code


def _opened(typed: dict[str, Any]) -> bool:
    """The Options stay open when one of them was used (or is wrong)."""
    used = [typed[name] for name in ("code", "title", "tags", "expires_at", "valid_from")]
    return any(used) or bool(typed["max_visits"] or typed["forward_query"] or typed["rules"])


def _problem_errors(problem: Problem) -> dict[str, str]:
    """By field. A refusal of no field is the password's hashing (429/503: too many at
    once), said at the password; anything else at the URL."""
    busy = problem.status in (429, 503) and not problem.type.endswith("/rate-limited")
    field = "password" if busy else "url"
    return forms.problem_errors(problem.errors) or {field: problem.detail}
