"""The YOURLS API at `/yourls-api.php`, so YOURLS's clients (ShareX, browser extensions, the
`yourls` Python client, a decade of scripts) work against encurta unchanged.

A thin adapter over the same services the links API uses (`Links`, the target check, the
Gate): it only translates YOURLS's request parameters in and its answers out. It lives in
the shortener because the shortener owns what every action reads (links and their click
counts), so it works in every topology without a call to another module.

What it keeps of YOURLS (includes/functions-api.php, functions-shorturls.php): GET and POST
alike; `action` = shorturl, expand, url-stats, stats, db-stats; `format` = xml (YOURLS's
default), json, jsonp (with YOURLS's callback rule) or simple (any other value too); the
fields, `status`/`code`/`message` values and HTTP status codes of YOURLS 1.9+, including the
400 `error:keyword` answer for a taken keyword.

What differs, because encurta has accounts and YOURLS has none: `signature` is an encurta
API key (links:write to shorten, links:read for the rest) and every answer covers the key
owner's links only (`db-stats` counts them, `expand` of another's code is "not found").
`username`/`password` cannot work here (auth owns passwords and modules do not call each
other): that answer is YOURLS's 403 telling to use `signature`. Every shortening makes a new
link (YOURLS with YOURLS_UNIQUE_URLS=false), no page title is fetched (no request to a
target on a user's behalf), and no creator IP is kept (`ip` is empty).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.http import MAX_BODY_BYTES, read_urlencoded
from app.kernel.problems import Problem
from app.kernel.tokens import Principal
from app.modules.shortener.codes import custom_code_problem
from app.modules.shortener.limits import CreationLimits
from app.modules.shortener.schemas import MAX_TITLE
from app.modules.shortener.service import CodeTaken, Link, LinkNotFound, Links, OwnerDeleted

PATH = "/yourls-api.php"
Answer = dict[str, Any]
Checker = Callable[[Request, str, str], str]

_NEED_FORMAT = "Need either XML or JSON format for stats"
_NOT_FOUND = "Error: short URL not found"
# YOURLS's jsonp rule (yourls_validate_jsonp_callback): a name, no smuggled \\uXXXX.
_CALLBACK = re.compile(r"[a-zA-Z0-9_$.]+")
_ESCAPE = re.compile(r"\\?u[0-9a-fA-F]{4}")
_SORTS = {"top": "-click_count", "bottom": "click_count", "last": "-created_at"}
_MAX_LIMIT = 1000  # YOURLS has none; one request may not read a whole database
_CONTENT_TYPES = {
    "json": "application/json",
    "jsonp": "application/javascript",
    "xml": "application/xml",
    "simple": "text/plain",
}


def _trim(text: str, length: int = 60, append: str = "[...]") -> str:
    """yourls_trim_long_string: the URL as YOURLS's messages show it."""
    return text if len(text) <= length else text[: length - len(append)] + append


def _date(when: datetime) -> str:
    """YOURLS's `Y-m-d H:i:s` (here always UTC), which the clients parse."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fail(code: str, message: str, status: str = "400") -> Answer:
    return {
        "status": "fail",
        "code": code,
        "message": message,
        "errorCode": status,
        "statusCode": status,
        "simple": "",
    }


def _xml(answer: Mapping[str, Any]) -> bytes:
    """Spatie's ArrayToXml as YOURLS calls it: a `<root>` element, one child per key."""

    def fill(element: ET.Element, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                fill(ET.SubElement(element, str(key)), child)
        elif value is not None:
            element.text = str(value)

    root = ET.Element("root")
    fill(root, answer)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root) + b"\n"


def render(form: str, answer: Answer) -> Response:
    """yourls_api_output: the HTTP status from `statusCode`, else `errorCode`, else 200."""
    answer = dict(answer)
    simple = answer.pop("simple", "")
    status = int(answer.get("statusCode") or answer.get("errorCode") or 200)
    if form not in _CONTENT_TYPES:
        form = "simple"
    if form == "jsonp":
        callback = str(answer.get("callback", ""))
        if not _CALLBACK.fullmatch(callback) or _ESCAPE.search(callback):
            invalid = {"errorCode": "400", "error": "Invalid callback parameter"}
            return Response(orjson.dumps(invalid), 400, media_type=_CONTENT_TYPES[form])
        body = callback.encode() + b"(" + orjson.dumps(answer) + b")"
    elif form == "json":
        body = orjson.dumps(answer)
    elif form == "xml":
        body = _xml(answer)
    else:
        body = str(simple).encode()
    return Response(body, status, media_type=_CONTENT_TYPES[form])


class YourlsApi:
    """The actions, each answering YOURLS's array for the caller (`Principal`)."""

    def __init__(
        self,
        links: Links,
        base_url: Callable[[Request], str],
        checked: Checker,
        limits: CreationLimits | None = None,
    ) -> None:
        self._limits = limits
        self._links = links
        self._base_url = base_url
        self._checked = checked
        self.actions: dict[
            str, tuple[str, Callable[[Request, Principal, Mapping[str, str]], Awaitable[Answer]]]
        ] = {
            "shorturl": ("links:write", self.shorturl),
            "expand": ("links:read", self.expand),
            "url-stats": ("links:read", self.url_stats),
            "stats": ("links:read", self.stats),
            "db-stats": ("links:read", self.db_stats),
        }

    def _keyword(self, request: Request, short: str) -> str:
        """Accept `http://sho.rt/abc` or `abc`, as YOURLS does (any host: behind a proxy the
        client may know this instance by another name)."""
        base = self._base_url(request) + "/"
        if short.startswith(base):
            return short[len(base) :]
        if "://" in short:
            return urlsplit(short).path.strip("/")
        return short.strip("/")

    def _link(self, request: Request, link: Link) -> Answer:
        return {
            "shorturl": f"{self._base_url(request)}/{link.code}",
            "url": link.target_url,
            "title": link.title or link.target_url,
            "timestamp": _date(link.created_at),
            "ip": "",
            "clicks": link.click_count,
        }

    async def shorturl(self, request: Request, owner: Principal, form: Mapping[str, str]) -> Answer:
        url, keyword = form.get("url", "").strip(), form.get("keyword", "").strip()
        # Cut to encurta's limit rather than refused: YOURLS sanitizes titles, never refuses.
        title = form.get("title", "").strip()[:MAX_TITLE].strip() or None
        if not url:
            return _fail("error:nourl", "Missing or malformed URL")
        try:
            target = self._checked(request, url, "url")
        except Problem as problem:
            reasons = "; ".join(str(error.get("message")) for error in problem.errors)
            return _fail("error:nourl", reasons or problem.detail)
        if keyword and custom_code_problem(keyword):
            # YOURLS answers a reserved keyword as a taken one; encurta says why.
            reason = custom_code_problem(keyword)
            return _fail("error:keyword", f"Short URL {keyword} cannot be used: {reason}")
        if self._limits is not None:  # a 429 problem, with Retry-After, when over
            await self._limits.check(request, owner.user_id)
        try:
            link = await self._links.create(target, owner.user_id, keyword or None, None, title)
        except CodeTaken:
            return _fail(
                "error:keyword", f"Short URL {keyword} already exists in database or is reserved"
            )
        except OwnerDeleted:
            return {"message": "Please log in", "errorCode": "403", "simple": "Please log in"}
        shorturl = f"{self._base_url(request)}/{link.code}"
        shown_title = link.title or link.target_url
        return {
            "status": "success",
            "code": "",
            "message": f"{_trim(link.target_url)} added to database",
            "errorCode": "",
            "statusCode": "200",
            "url": {
                "keyword": link.code,
                "url": link.target_url,
                "title": shown_title,
                "date": _date(link.created_at),
                "ip": "",
            },
            "title": shown_title,
            "shorturl": shorturl,
            "simple": shorturl,
        }

    async def expand(self, request: Request, owner: Principal, form: Mapping[str, str]) -> Answer:
        keyword = self._keyword(request, form.get("shorturl", ""))
        try:
            link = await self._links.get(owner.user_id, keyword)
        except LinkNotFound:
            return {
                "keyword": keyword,
                "simple": "not found",
                "message": _NOT_FOUND,
                "errorCode": "404",
            }
        return {
            "keyword": link.code,
            "shorturl": f"{self._base_url(request)}/{link.code}",
            "longurl": link.target_url,
            "title": link.title or link.target_url,
            "simple": link.target_url,
            "message": "success",
            "statusCode": "200",
        }

    async def url_stats(
        self, request: Request, owner: Principal, form: Mapping[str, str]
    ) -> Answer:
        keyword = self._keyword(request, form.get("shorturl", ""))
        try:
            link = await self._links.get(owner.user_id, keyword)
        except LinkNotFound:
            return {"statusCode": "404", "message": _NOT_FOUND, "simple": _NEED_FORMAT}
        return {
            "statusCode": "200",
            "message": "success",
            "link": self._link(request, link),
            "simple": _NEED_FORMAT,
        }

    async def stats(self, request: Request, owner: Principal, form: Mapping[str, str]) -> Answer:
        chosen = form.get("filter", "")
        sort = "random" if chosen in ("rand", "random") else _SORTS.get(chosen, "-click_count")
        limit = min(_integer(form.get("limit", "")), _MAX_LIMIT)
        start = _integer(form.get("start", ""))
        answer: Answer = {}
        if limit > 0:
            ranked = await self._links.ranked(owner.user_id, sort, limit, start)
            if ranked:
                answer["links"] = {
                    f"link_{number}": self._link(request, link)
                    for number, link in enumerate(ranked, start=1)
                }
        answer["stats"] = await self._db_stats(owner)
        return {**answer, "statusCode": "200", "simple": _NEED_FORMAT, "message": "success"}

    async def db_stats(self, request: Request, owner: Principal, form: Mapping[str, str]) -> Answer:
        return {
            "db-stats": await self._db_stats(owner),
            "statusCode": "200",
            "simple": _NEED_FORMAT,
            "message": "success",
        }

    async def _db_stats(self, owner: Principal) -> dict[str, int]:
        links, clicks = await self._links.totals(owner.user_id)
        return {"total_links": links, "total_clicks": clicks}


def _integer(text: str) -> int:
    """PHP's intval for what YOURLS reads as numbers: garbage is 0, never an error."""
    match = re.match(r"\s*[+-]?\d+", text)
    return max(int(match.group()), 0) if match else 0


async def _body_fields(request: Request) -> dict[str, str]:
    """A POST's form fields (urlencoded or multipart, as PHP reads them into $_POST), read
    within the API's 64 KiB; any other body is ignored, as PHP ignores it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST":
        return {}
    if media_type == "multipart/form-data":
        async with request.form(max_files=0, max_fields=100, max_part_size=MAX_BODY_BYTES) as parts:
            return {key: value for key, value in parts.items() if isinstance(value, str)}
    if media_type != "application/x-www-form-urlencoded":
        return {}
    fields = await read_urlencoded(request, MAX_BODY_BYTES, max_fields=100)
    return dict(fields)


def _refused(message: str) -> Answer:
    """auth.php's answer to a caller it does not admit."""
    return {"message": message, "errorCode": "403", "simple": message}


def build_yourls_routes(
    links: Links,
    gate: Gate,
    public_url: str | None,
    checked: Checker,
    limits: CreationLimits | None = None,
) -> list[BaseRoute]:
    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    api = YourlsApi(links, base_url, checked, limits)

    async def admitted(form: Mapping[str, str], scope: str) -> Principal | Answer:
        signature = form.get("signature", "")
        if signature:
            try:
                return await gate.authenticate_key(signature, scope)
            except Problem as problem:
                if problem.status == 403:
                    return _refused(problem.detail)
                return _refused(
                    "Please log in: the signature is not a valid encurta API key "
                    "(unknown, revoked or expired)."
                )
        if form.get("username") or form.get("password"):
            return _refused(
                "Invalid username or password: encurta takes no password here. Pass an "
                "encurta API key (Settings > API keys) as `signature` instead."
            )
        return _refused("Please log in: pass an encurta API key as `signature`.")

    async def endpoint(request: Request) -> Response:
        # $_REQUEST: the body's fields win over the query's, as PHP's request_order does.
        form = {**request.query_params, **(await _body_fields(request))}
        if any("\x00" in value for value in form.values()):
            message = "Text must not contain NUL."
            return render(form.get("format", "xml"), _fail("error:nourl", message))
        action = api.actions.get(form.get("action", ""))
        scope = action[0] if action else "links:read"
        caller = await admitted(form, scope)
        if isinstance(caller, Principal):
            if action is None:
                message = 'Unknown or missing "action" parameter'
                answer = {"errorCode": "400", "message": message, "simple": message}
            else:
                answer = await action[1](request, caller, form)
        else:
            answer = caller
        callback = form.get("callback", form.get("jsonp"))
        if callback is not None:
            answer["callback"] = callback
        return render(form.get("format", "xml"), answer)

    return [Route(PATH, endpoint, methods=["GET", "POST"])]
