"""The links API and the redirect."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.exports import attachment, file_name
from app.kernel.http import json_response, read_json, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.session import has_credentials
from app.kernel.tokens import Principal, unauthorized
from app.modules.shortener.blocklist import Blocklist
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.editing import LinkEditor
from app.modules.shortener.exports import EXPORT_DESCRIPTION, ExportQuery, LinkExport
from app.modules.shortener.limits import CreationLimits
from app.modules.shortener.passwords import LinkPasswords
from app.modules.shortener.qr import MEDIA_TYPES, qr_code
from app.modules.shortener.redirect import Redirector
from app.modules.shortener.redirect import not_found as _not_found
from app.modules.shortener.schemas import (
    CreateLink,
    LinkOut,
    LinkPage,
    PageQuery,
    QrQuery,
    TagList,
    TagOut,
    UpdateLink,
    link_out,
)
from app.modules.shortener.service import (
    CodeTaken,
    Link,
    LinkNotFound,
    Links,
    OwnerDeleted,
)
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.targets import UnsafeTarget, check_target

# Every code that can exist, generated or custom, past or present; anything else is 404.
CODE_PARAMETER = {
    "type": "string",
    "pattern": f"^{ANY_CODE.pattern}$",
    "description": "A short code: 1 to 64 of [A-Za-z0-9_-].",
}


def _known_shape(code: str) -> str:
    if not ANY_CODE.fullmatch(code):
        raise _not_found(code)
    return code


def target_checker(
    settings: ShortenerSettings, blocklist: Blocklist | None
) -> Callable[[Request, str, str], str]:
    """`checked(request, url, field)`: the target as stored, or a 422 naming `field`."""

    def own_hosts(request: Request) -> set[str]:
        """Every name this instance may be reached by. The Host header alone can be forged,
        so the configured public URL and the address the request reached count too."""
        server = request.scope.get("server")
        hosts = {
            urlsplit(settings.public_url or "").hostname,
            request.url.hostname,
            server[0] if server else None,
        }
        return {host for host in hosts if host}

    def checked(request: Request, url: str, field: str = "url") -> str:
        try:
            target = check_target(
                url, own_hosts=own_hosts(request), allow_private=settings.allow_private_targets
            )
        except UnsafeTarget as exc:
            raise invalid_fields([{"field": field, "message": str(exc)}]) from None
        if blocklist is not None and (refusal := blocklist.refusal(target)):
            raise invalid_fields([{"field": field, "message": refusal}])
        return target

    return checked


def build_routes(
    links: Links,
    redirector: Redirector,
    gate: Gate,
    settings: ShortenerSettings,
    passwords: LinkPasswords,
    blocklist: Blocklist | None = None,
    limits: CreationLimits | None = None,
) -> list[BaseRoute]:
    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    def present(request: Request) -> Callable[[Link], LinkOut]:
        base = base_url(request)
        return lambda link: link_out(link, base)

    editor = LinkEditor(links, passwords, target_checker(settings, blocklist), limits)

    async def create(request: Request) -> Response:
        owner: Principal | None = None
        if has_credentials(request) or not settings.allow_anonymous:
            owner = await gate.authenticate(request, "links:write")
        body = await read_json(request, CreateLink)
        try:
            link = await editor.create(request, owner.user_id if owner else None, body)
        except CodeTaken:
            raise Problem(409, f"The code '{body.code}' is taken.", slug="code-taken") from None
        except OwnerDeleted:
            raise unauthorized("The account of this token has been deleted.") from None
        response = json_response(present(request)(link), status_code=201)
        response.headers.update(getattr(request.state, "rate_limit", {}))
        response.headers["Location"] = f"/api/links/{link.code}"
        return response

    async def list_links(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:read")
        query = read_query(request, PageQuery)
        page = await links.page(
            owner.user_id, query.page, query.per_page, tag=query.tag, q=query.q, sort=query.sort
        )
        to_out = present(request)
        return json_response(
            LinkPage(
                items=[to_out(link) for link in page.links],
                page=query.page,
                per_page=query.per_page,
                total=page.total,
            )
        )

    exporter = LinkExport(links.engine)

    async def export(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:read")
        query = read_query(request, ExportQuery)
        chunks = exporter.chunks(query.format, owner.user_id, base_url(request))
        return attachment(chunks, query.format, file_name("links", query.format))

    async def show(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:read")
        code = _known_shape(request.path_params["code"])
        try:
            link = await links.get(owner.user_id, code)
        except LinkNotFound:
            raise _not_found(code) from None
        return json_response(present(request)(link))

    async def change(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:write")
        code = _known_shape(request.path_params["code"])
        body = await read_json(request, UpdateLink)
        try:
            link = await editor.change(request, owner.user_id, code, body)
        except LinkNotFound:
            raise _not_found(code) from None
        return json_response(present(request)(link))

    async def qr(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:read")
        code = _known_shape(request.path_params["code"])
        query = read_query(request, QrQuery)
        try:
            link = await links.get(owner.user_id, code)
        except LinkNotFound:
            raise _not_found(code) from None
        image = qr_code(f"{base_url(request)}/{link.code}", query.format, query.size)
        return Response(image, media_type=MEDIA_TYPES[query.format])

    async def list_tags(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:read")
        tags = await links.tags(owner.user_id)
        return json_response(TagList(items=[TagOut(tag=tag, links=count) for tag, count in tags]))

    async def delete(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:write")
        code = _known_shape(request.path_params["code"])
        try:
            await links.delete(owner.user_id, code)
        except LinkNotFound:
            raise _not_found(code) from None
        return Response(status_code=204)

    tag = "links"
    code = {"code": CODE_PARAMETER}
    return [
        ApiRoute(
            "/api/links",
            create,
            method="POST",
            tag=tag,
            auth=True,
            summary="Shorten a URL",
            body=CreateLink,
            responses={
                201: LinkOut,
                401: "No or invalid access token",
                409: "The custom code is taken",
                422: "Invalid or unsafe field",
                429: "Too many links created by this user or client (Retry-After, RateLimit)",
            },
            headers={201: {"Location": "The new link in the API"}},
        ),
        ApiRoute(
            "/api/links",
            list_links,
            method="GET",
            tag=tag,
            auth=True,
            summary="The caller's links, filtered by tag or words, sorted (newest first)",
            query=PageQuery,
            responses={200: LinkPage, 401: "No or invalid access token"},
        ),
        ApiRoute(
            # Before `/api/links/{code}`: "export" is a reserved code (codes.py).
            "/api/links/export",
            export,
            method="GET",
            tag=tag,
            auth=True,
            summary="Download the caller's links, streamed, oldest first (JSONL or CSV)",
            description=EXPORT_DESCRIPTION,
            query=ExportQuery,
            responses={
                200: "An attachment: application/x-ndjson or text/csv",
                401: "No or invalid access token",
                422: "Invalid format",
            },
        ),
        ApiRoute(
            "/api/links/{code}",
            show,
            method="GET",
            tag=tag,
            auth=True,
            summary="One of the caller's links, with its click count",
            path_params=code,
            responses={200: LinkOut, 404: "No such link of the caller's"},
        ),
        ApiRoute(
            "/api/links/{code}",
            change,
            method="PATCH",
            tag=tag,
            auth=True,
            summary="Change one of the caller's links: any subset of its fields (null clears)",
            path_params=code,
            body=UpdateLink,
            responses={
                200: LinkOut,
                404: "No such link of the caller's",
                422: "Invalid or unsafe field",
            },
        ),
        ApiRoute(
            "/api/links/{code}/qr",
            qr,
            method="GET",
            tag=tag,
            auth=True,
            summary="One of the caller's links as a QR code of its short URL (SVG or PNG)",
            path_params=code,
            query=QrQuery,
            responses={
                200: "The QR code, as image/svg+xml or image/png",
                404: "No such link of the caller's",
                422: "Invalid format or size",
            },
        ),
        ApiRoute(
            "/api/tags",
            list_tags,
            method="GET",
            tag=tag,
            auth=True,
            summary="The caller's tags with their numbers of live links, the most used first",
            responses={200: TagList, 401: "No or invalid access token"},
        ),
        ApiRoute(
            "/api/links/{code}",
            delete,
            method="DELETE",
            tag=tag,
            auth=True,
            summary="Delete one of the caller's links (it then answers 410)",
            path_params=code,
            responses={204: "Deleted", 404: "No such link of the caller's"},
        ),
        ApiRoute(
            "/{code}",
            redirector,
            method="GET",
            tag="redirect",
            summary="Follow a short link (the click is counted)",
            path_params=code,
            responses={
                settings.redirect_status: "To the target",
                200: "A password link: its password form (HTML)",
                401: "A password link, to a client that accepts JSON only",
                404: "No such link",
                410: "Expired or deleted",
                429: "Too many unknown codes from this client (Retry-After, RateLimit)",
            },
            headers={settings.redirect_status: {"Location": "The target URL"}},
        ),
        ApiRoute(
            "/{code}",
            passwords.unlock,
            method="POST",
            tag="redirect",
            summary="Give a password link its password (form field `password`) and follow it",
            description="The body is the page's form, `application/x-www-form-urlencoded` with "
            "the field `password` (at most 4 KiB). 303, not the link's redirect status, so the "
            "browser fetches the target with GET and never sends the password on.",
            path_params=code,
            responses={
                303: "The password is right: to the target (the click is counted)",
                401: "Wrong password: the form again (problem+json to a JSON client)",
                404: "No such link",
                405: "The link has no password",
                410: "Expired or deleted",
                415: "Not an application/x-www-form-urlencoded form",
                429: "Too many wrong passwords from this client for this link (Retry-After)",
            },
            headers={303: {"Location": "The target URL"}},
        ),
    ]
