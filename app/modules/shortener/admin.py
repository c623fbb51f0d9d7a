"""The shortener's administration: every user's links, disabling one, blocked domains, and
the visits to codes that do not exist.

Only an admin may (the access token's `role` claim, checked with auth's key like any
token: no call into auth). A disabled link answers 410 with the admin's reason in every
replica: the change publishes `link_updated`, whose broadcast evicts the link from every
cache, and the link is loaded again with its new state. Its owner sees `disabled` in its
JSON and cannot undo it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import json_response, read_json, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.tokens import Principal
from app.modules.shortener.blocklist import (
    MAX_DOMAIN,
    Blocklist,
    InvalidDomain,
    normalise_domain,
)
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.orphans import MAX_PATH, recent
from app.modules.shortener.redirect import not_found
from app.modules.shortener.routes import CODE_PARAMETER
from app.modules.shortener.schemas import LinkOut, PageQuery
from app.modules.shortener.service import (
    _STORED_COLUMNS,
    Link,
    LinkNotFound,
    Links,
    publish_update,
)
from app.modules.shortener.tables import urls

MAX_REASON = 500
_MAX_DOMAIN_PARAMETER = MAX_DOMAIN + 1  # and a trailing dot


class AdminLinkOut(LinkOut):
    """A link of any user, with its owner's id (null for an anonymous link)."""

    owner_id: UUID | None


class AdminLinkPage(BaseModel):
    """One page of every user's links."""

    items: list[AdminLinkOut]
    page: int
    per_page: int
    total: int


class ChangeLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool = Field(description="true: the link answers 410 (with the reason).")
    reason: str | None = Field(
        default=None,
        description=f"Shown in the 410 and to the owner; at most {MAX_REASON} characters.",
    )

    @field_validator("reason")
    @classmethod
    def _short(cls, reason: str | None) -> str | None:
        if reason is None:
            return None
        reason = reason.strip()
        if len(reason) > MAX_REASON:
            raise ValueError(f"A reason has at most {MAX_REASON} characters.")
        return reason or None


class BlockDomain(BaseModel):
    domain: str = Field(
        description="A domain name (a URL is reduced to its host); its subdomains are blocked too.",
        max_length=2048,
    )


class BlockedDomainOut(BaseModel):
    domain: str
    created_at: datetime


class BlockedDomainList(BaseModel):
    """Every blocked domain, in alphabetical order."""

    items: list[BlockedDomainOut]


class OrphanQuery(BaseModel):
    days: int = Field(default=30, ge=1, le=400, description="The last this many days (UTC).")
    page: int = Field(default=1, ge=1, le=100_000, description="From 1.")
    per_page: int = Field(default=100, ge=1, le=1000, description="Rows per page.")


class OrphanOut(BaseModel):
    day: date
    path: str = Field(description=f"At most {MAX_PATH} characters; `(other)` counts the rest.")
    visits: int


class OrphanPage(BaseModel):
    """Visits to codes that do not exist, per day and path: the latest day first, its
    busiest paths first."""

    items: list[OrphanOut]
    days: int
    page: int
    per_page: int
    total: int


@dataclass
class AdminLinks:
    engine: AsyncEngine
    cache: LinkCache

    async def set_disabled(self, code: str, disabled: bool, reason: str | None) -> Link:
        """Disable (or enable) a live link and publish its new state (`link_updated`) in
        one transaction; every replica evicts it when it hears of it, this one at once."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(urls)
                    .where(urls.c.code == code, urls.c.deleted_at.is_(None))
                    .values(
                        disabled_at=func.coalesce(urls.c.disabled_at, func.now())
                        if disabled
                        else None,
                        disabled_reason=reason if disabled else None,
                        version=urls.c.version + 1,
                        updated_at=func.now(),
                    )
                    .returning(*_STORED_COLUMNS, urls.c.version)
                )
            ).one_or_none()
            if row is None:
                raise LinkNotFound
            link = await publish_update(conn, row)
        self.cache.evict(code)
        return link


def _bad_domain(message: str) -> Problem:
    return invalid_fields([{"field": "domain", "message": message}])


def build_admin_routes(
    links: Links,
    admin_links: AdminLinks,
    blocklist: Blocklist,
    gate: Gate,
    public_url: str | None,
) -> list[BaseRoute]:
    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    async def admin(request: Request) -> Principal:
        principal = await gate.authenticate(request, "admin")
        principal.require_admin()
        return principal

    def present(request: Request, link: Link) -> AdminLinkOut:
        return AdminLinkOut(
            **asdict(link), short_url=f"{base_url(request)}/{link.code}", url=link.target_url
        )

    async def list_links(request: Request) -> Response:
        await admin(request)
        query = read_query(request, PageQuery)
        found = await links.page(
            None, query.page, query.per_page, tag=query.tag, q=query.q, sort=query.sort
        )
        return json_response(
            AdminLinkPage(
                items=[present(request, link) for link in found.links],
                page=query.page,
                per_page=query.per_page,
                total=found.total,
            )
        )

    async def change_link(request: Request) -> Response:
        await admin(request)
        code = request.path_params["code"]
        body = await read_json(request, ChangeLink)
        if not ANY_CODE.fullmatch(code):
            raise not_found(code)
        if not body.disabled and body.reason is not None:
            raise invalid_fields(
                [{"field": "reason", "message": "A reason goes with disabled: true only."}]
            )
        try:
            link = await admin_links.set_disabled(code, body.disabled, body.reason)
        except LinkNotFound:
            raise not_found(code) from None
        return json_response(present(request, link))

    async def list_blocked(request: Request) -> Response:
        await admin(request)
        items = [BlockedDomainOut(**asdict(item)) for item in await blocklist.list()]
        return json_response(BlockedDomainList(items=items))

    async def block(request: Request) -> Response:
        principal = await admin(request)
        body = await read_json(request, BlockDomain)
        try:
            domain = normalise_domain(body.domain)
        except InvalidDomain as exc:
            raise _bad_domain(str(exc)) from None
        blocked, new = await blocklist.block(domain, principal.user_id)
        response = json_response(BlockedDomainOut(**asdict(blocked)), 201 if new else 200)
        response.headers["Location"] = f"/api/admin/blocked-domains/{domain}"
        return response

    async def unblock(request: Request) -> Response:
        await admin(request)
        raw = request.path_params["domain"]
        if len(raw) > _MAX_DOMAIN_PARAMETER:
            raise _bad_domain(f"A domain has at most {MAX_DOMAIN} characters.")
        try:
            domain = normalise_domain(raw)
        except InvalidDomain as exc:
            raise _bad_domain(str(exc)) from None
        if not await blocklist.unblock(domain):
            raise Problem(404, f"{domain} is not blocked.", slug="domain-not-blocked")
        return Response(status_code=204)

    async def orphans(request: Request) -> Response:
        await admin(request)
        query = read_query(request, OrphanQuery)
        rows, total = await recent(admin_links.engine, query.days, query.page, query.per_page)
        return json_response(
            OrphanPage(
                items=[OrphanOut(**asdict(row)) for row in rows],
                days=query.days,
                page=query.page,
                per_page=query.per_page,
                total=total,
            )
        )

    tag = "admin"
    not_admin = "Not an admin"
    unauthenticated = "No or invalid access token"
    domain = {
        "domain": {
            "type": "string",
            "pattern": f"^[^\\s/?#@\\\\]{{1,{_MAX_DOMAIN_PARAMETER}}}$",
            "description": "A blocked domain, as listed.",
        }
    }
    return [
        ApiRoute(
            "/api/admin/links",
            list_links,
            method="GET",
            tag=tag,
            auth=True,
            summary="Every user's links, with their owners, filtered and sorted (admins only)",
            query=PageQuery,
            responses={200: AdminLinkPage, 401: unauthenticated, 403: not_admin},
        ),
        ApiRoute(
            "/api/admin/links/{code}",
            change_link,
            method="PATCH",
            tag=tag,
            auth=True,
            summary="Disable a link (it answers 410 with the reason) or enable it (admins only)",
            path_params={"code": CODE_PARAMETER},
            body=ChangeLink,
            responses={
                200: AdminLinkOut,
                401: unauthenticated,
                403: not_admin,
                404: "No such link",
                422: "Invalid field",
            },
        ),
        ApiRoute(
            "/api/admin/blocked-domains",
            list_blocked,
            method="GET",
            tag=tag,
            auth=True,
            summary="The blocked domains (admins only)",
            responses={200: BlockedDomainList, 401: unauthenticated, 403: not_admin},
        ),
        ApiRoute(
            "/api/admin/blocked-domains",
            block,
            method="POST",
            tag=tag,
            auth=True,
            summary="Block a domain and its subdomains: new links to it are refused, existing "
            "ones answer 410 (admins only)",
            body=BlockDomain,
            responses={
                201: BlockedDomainOut,
                200: "Already blocked: the domain as it was",
                401: unauthenticated,
                403: not_admin,
                422: "Invalid domain",
            },
            headers={201: {"Location": "The blocked domain in the API"}},
        ),
        ApiRoute(
            "/api/admin/blocked-domains/{domain}",
            unblock,
            method="DELETE",
            tag=tag,
            auth=True,
            summary="Unblock a domain: its links redirect again (admins only)",
            path_params=domain,
            responses={
                204: "Unblocked",
                401: unauthenticated,
                403: not_admin,
                404: "Not blocked",
                422: "Invalid domain",
            },
        ),
        ApiRoute(
            "/api/stats/orphans",
            orphans,
            method="GET",
            tag=tag,
            auth=True,
            summary="Visits to codes that do not exist, per day and path (admins only)",
            query=OrphanQuery,
            responses={200: OrphanPage, 401: unauthenticated, 403: not_admin},
        ),
    ]
