"""The Shlink REST API v3 (short URLs, tags, orphan visits, health), so Shlink's clients
(its JS SDK, web client, extensions) work against encurta unchanged.

A thin adapter over the links API's services (`Links`, `LinkEditor`, the Gate): it
translates Shlink's parameters and bodies into encurta's (shlink_schemas.py) and encurta's
links and refusals into Shlink's JSON and problem details (app/kernel/shlink.py). The
caller is the owner of the encurta API key in `X-Api-Key`; every answer covers that
owner's links only, like the links API.

A short URL's visits are analytics' data: `/rest/v3/short-urls/{code}/visits` answers a 307
to analytics' `/rest/v3/visits/short-urls/{code}` (moved.py's precedent), a prefix a proxy
in front of a split deployment can route. Orphan visits are the shortener's (orphans.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.http import read_json
from app.kernel.problems import validation_problem
from app.kernel.shlink import (
    ShlinkError,
    api_key_caller,
    atom,
    invalid_data,
    json_answer,
    page_numbers,
    pagination,
    shlink_endpoint,
    short_url_not_found,
    visits_summary,
    with_preflights,
)
from app.modules.shortener.codes import ANY_CODE
from app.modules.shortener.editing import LinkEditor
from app.modules.shortener.orphans import OrphanVisits, recent
from app.modules.shortener.schemas import MAX_TAG, MAX_TAGS
from app.modules.shortener.service import CodeTaken, Link, LinkNotFound, Links, OwnerDeleted
from app.modules.shortener.shlink_schemas import NAMES, ShlinkCreate, ShlinkEdit

PREFIX = "/rest/v3"
# The Shlink API level whose shapes this answers (clients gate features on it).
SHLINK_VERSION = "4.0.0"
_ORDER = {
    "dateCreated": "created_at",
    "shortCode": "code",
    "longUrl": "target_url",
    "title": "title",
    "visits": "click_count",
    "nonBotVisits": "click_count",  # the shortener counts clicks; bots are analytics' to tell
}
_UNSUPPORTED_FILTERS = (
    "startDate",
    "endDate",
    "excludeMaxVisitsReached",
    "excludePastValidUntil",
    "excludeTags[]",
    "apiKeyName",
)
_FIND_LIMIT = 100
_ORPHAN_DAYS = 400


def short_url(base: str, link: Link) -> dict[str, Any]:
    """Shlink's ShortUrl object. `visitsSummary` splits no bots (bots: 0): the shortener
    counts clicks; analytics' visits endpoints tell bots apart."""
    return {
        "shortCode": link.code,
        "shortUrl": f"{base}/{link.code}",
        "longUrl": link.target_url,
        "deviceLongUrls": {"android": None, "ios": None, "desktop": None},
        "dateCreated": atom(link.created_at),
        "tags": list(link.tags),
        "meta": {
            "validSince": atom(link.valid_from),
            "validUntil": atom(link.expires_at),
            "maxVisits": link.max_visits,
        },
        "domain": None,
        "title": link.title,
        "crawlable": False,
        "forwardQuery": link.forward_query,
        "visitsSummary": visits_summary(link.click_count, 0),
        "hasRedirectRules": bool(link.redirect_rules),
    }


def _text(name: str, value: str, limit: int) -> str:
    if "\x00" in value:
        raise invalid_data({name: "NUL characters are not allowed."})
    if len(value) > limit:
        raise invalid_data({name: f"At most {limit} characters."})
    return value


def _order(raw: str) -> str:
    field, _, direction = raw.partition("-")
    if field not in _ORDER or direction.upper() not in ("", "ASC", "DESC"):
        choices = ", ".join(_ORDER)
        raise invalid_data({"orderBy": f"One of {choices}, with -ASC or -DESC."})
    sort = _ORDER[field]
    return f"-{sort}" if direction.upper() == "DESC" else sort


def build_shlink_routes(
    links: Links, editor: LinkEditor, gate: Gate, public_url: str | None
) -> list[BaseRoute]:
    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    def known(request: Request) -> str:
        """The path's code, if it is this instance's (the default domain's) and can exist."""
        code: str = request.path_params["code"]
        domain = request.query_params.get("domain") or None
        if domain not in (None, "DEFAULT", urlsplit(base_url(request)).netloc):
            raise short_url_not_found(code, domain)
        if not ANY_CODE.fullmatch(code):
            raise short_url_not_found(code)
        return code

    async def health(request: Request) -> Response:
        body = {
            "status": "pass",
            "version": SHLINK_VERSION,
            "links": {
                "about": "https://shlink.io",
                "project": "https://github.com/shlinkio/shlink",
            },
        }
        return Response(json_answer(body).body, media_type="application/health+json")

    async def list_short_urls(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:read")
        query = request.query_params
        page, per_page = page_numbers(request, 10)
        asked = [name for name in _UNSUPPORTED_FILTERS if query.get(name)]
        if asked:
            raise invalid_data({name: "Not supported by encurta." for name in asked})
        tags = [
            _text("tags", tag, MAX_TAG) for tag in query.getlist("tags[]") + query.getlist("tags")
        ]
        if len(tags) > MAX_TAGS:
            raise invalid_data({"tags": f"At most {MAX_TAGS} tags."})
        mode = query.get("tagsMode") or "any"  # Shlink's default
        if mode not in ("any", "all"):
            raise invalid_data({"tagsMode": "Either any or all."})
        found = await links.page(
            owner.user_id,
            page,
            per_page,
            q=_text("searchTerm", query.get("searchTerm", ""), 200) or None,
            sort=_order(query["orderBy"]) if query.get("orderBy") else "-created_at",
            tags=tags,
            any_tag=mode == "any",
        )
        base = base_url(request)
        data = [short_url(base, link) for link in found.links]
        answer = {"data": data, "pagination": pagination(page, per_page, len(data), found.total)}
        return json_answer({"shortUrls": answer})

    async def existing(request: Request, owner_id: Any, asked: ShlinkCreate) -> Link | None:
        """findIfExists: the caller's link to the same long URL (same slug and tags, if
        given), as Shlink matches it."""
        target = editor.checked(request, asked.longUrl, "longUrl")
        if asked.customSlug:
            try:
                found = [await links.get(owner_id, asked.customSlug)]
            except LinkNotFound:
                return None
        else:
            found = (await links.page(owner_id, 1, _FIND_LIMIT, q=target, sort="created_at")).links
        tags = {tag.strip().casefold() for tag in asked.tags or []}
        for link in found:
            if link.target_url == target and (
                not asked.tags or tags == {t.casefold() for t in link.tags}
            ):
                return link
        return None

    async def create(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:write")
        asked = await read_json(request, ShlinkCreate)
        try:
            body = asked.to_encurta()
        except ValidationError as error:
            raise validation_problem(error) from None
        if asked.findIfExists and (link := await existing(request, owner.user_id, asked)):
            return json_answer(short_url(base_url(request), link))
        try:
            link = await editor.create(request, owner.user_id, body)
        except CodeTaken:
            raise ShlinkError(
                400,
                "non-unique-slug",
                "Invalid custom slug",
                f'Provided slug "{body.code}" is already in use.',
                customSlug=body.code,
            ) from None
        except OwnerDeleted:
            raise ShlinkError(
                401,
                "invalid-api-key",
                "Invalid API key",
                "The account of this API key has been deleted.",
            ) from None
        return json_answer(short_url(base_url(request), link))

    async def get(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:read")
        code = known(request)
        try:
            link = await links.get(owner.user_id, code)
        except LinkNotFound:
            raise short_url_not_found(code) from None
        return json_answer(short_url(base_url(request), link))

    async def edit(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:write")
        code = known(request)
        asked = await read_json(request, ShlinkEdit)
        try:
            body = asked.to_encurta()
        except ValidationError as error:
            raise validation_problem(error) from None
        try:
            link = await editor.change(request, owner.user_id, code, body)
        except LinkNotFound:
            raise short_url_not_found(code) from None
        return json_answer(short_url(base_url(request), link))

    async def delete(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:write")
        code = known(request)
        try:
            await links.delete(owner.user_id, code)
        except LinkNotFound:
            raise short_url_not_found(code) from None
        return Response(status_code=204)

    async def visits(request: Request) -> Response:
        """Analytics answers: a redirect to its path, the query kept (page, dates...). The
        link is looked up here first, so an unknown code is Shlink's 404 while a link just
        made (analytics may not have heard of it yet) has its empty page of visits."""
        owner = await api_key_caller(gate, request, "stats:read")
        code = known(request)
        try:
            await links.get(owner.user_id, code)
        except LinkNotFound:
            raise short_url_not_found(code) from None
        query = request.url.query
        location = f"{PREFIX}/visits/short-urls/{code}" + (f"?{query}" if query else "")
        return Response(status_code=307, headers={"Location": location})

    async def tags(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:read")
        return json_answer({"tags": {"data": [tag for tag, _ in await links.tags(owner.user_id)]}})

    async def tag_stats(request: Request) -> Response:
        owner = await api_key_caller(gate, request, "links:read")
        counted = await links.tags(owner.user_id)
        clicks = await links.tag_clicks(owner.user_id)
        data = [
            {
                "tag": tag,
                "shortUrlsCount": count,
                "visitsSummary": visits_summary(clicks.get(tag.casefold(), 0), 0),
            }
            for tag, count in counted
        ]
        return json_answer(
            {"tags": {"data": data, "pagination": pagination(1, len(data), len(data), len(data))}}
        )

    async def orphan_visits(request: Request) -> Response:
        """What the shortener keeps of visits to unknown codes: a count per day and path,
        instance-wide, so an admin key's only (Shlink shows them to admin keys only). Each
        row is one visit object with `visits`, its count; no visitor detail is kept."""
        caller = await api_key_caller(gate, request, "stats:read")
        page, per_page = page_numbers(request, 20)
        if (
            not caller.is_admin
            or request.query_params.get("type", "invalid_short_url") != "invalid_short_url"
        ):
            rows: list[OrphanVisits] = []
            total = 0
        else:
            rows, total = await recent(links.engine, _ORPHAN_DAYS, page, per_page)
        base = base_url(request)
        data = [
            {
                "referer": "",
                "date": atom(datetime.combine(row.day, time(), UTC)),
                "userAgent": "",
                "visitLocation": None,
                "potentialBot": False,
                "visitedUrl": base + (row.path if row.path.startswith("/") else f"/{row.path}"),
                "redirectUrl": None,
                "type": "invalid_short_url",
                "visits": row.visits,
            }
            for row in rows
        ]
        return json_answer(
            {"visits": {"data": data, "pagination": pagination(page, per_page, len(data), total)}}
        )

    def route(path: str, handler: Any, method: str) -> Route:
        return Route(path, shlink_endpoint(handler, NAMES), methods=[method])

    return with_preflights(
        [
            route("/rest/health", health, "GET"),
            route(f"{PREFIX}/health", health, "GET"),
            route(f"{PREFIX}/short-urls", list_short_urls, "GET"),
            route(f"{PREFIX}/short-urls", create, "POST"),
            route(f"{PREFIX}/short-urls/{{code}}", get, "GET"),
            route(f"{PREFIX}/short-urls/{{code}}", edit, "PATCH"),
            route(f"{PREFIX}/short-urls/{{code}}", delete, "DELETE"),
            route(f"{PREFIX}/short-urls/{{code}}/visits", visits, "GET"),
            route(f"{PREFIX}/tags", tags, "GET"),
            route(f"{PREFIX}/tags/stats", tag_stats, "GET"),
            route(f"{PREFIX}/visits/orphan", orphan_visits, "GET"),
        ]
    )
