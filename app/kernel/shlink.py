"""What the Shlink REST API v3 adapters of the shortener and analytics share: Shlink's
problem details, its `X-Api-Key` authentication, its pagination object and dates.

In the kernel because both modules answer Shlink's API (links in the shortener, visits in
analytics) and neither may import the other; each module keeps its own routes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.problems import PROBLEM_JSON, Problem
from app.kernel.tokens import Principal

ERROR_BASE = "https://shlink.io/api/error/"
API_KEY_HEADER = "X-Api-Key"
MAX_ITEMS_PER_PAGE = 100  # Shlink has none (-1 means all); one request may not read a database

Handler = Callable[[Request], Awaitable[Response]]


class ShlinkError(Exception):
    """An answer in Shlink's problem details format (`type` as Shlink documents it)."""

    def __init__(self, status: int, error: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {
            "type": ERROR_BASE + error,
            "title": title,
            "detail": detail,
            "status": status,
            **extra,
        }

    def response(self) -> Response:
        return Response(orjson.dumps(self.body), self.status, media_type=PROBLEM_JSON)


def invalid_data(reasons: Mapping[str, str]) -> ShlinkError:
    """Shlink's ValidationException: `invalidElements` names the fields; `reasons` (which
    Shlink leaves as a TODO) says why, so a refused target is not a mystery."""
    return ShlinkError(
        400,
        "invalid-data",
        "Invalid data",
        "Provided data is not valid",
        invalidElements=sorted(reasons),
        reasons=dict(reasons),
    )


def short_url_not_found(code: str, domain: str | None = None) -> ShlinkError:
    suffix = f' for domain "{domain}"' if domain else ""
    return ShlinkError(
        404,
        "short-url-not-found",
        "Short URL not found",
        f'No URL found with short code "{code}"{suffix}',
        shortCode=code,
        **({"domain": domain} if domain else {}),
    )


def _translated(problem: Problem, names: Mapping[str, str]) -> ShlinkError:
    """encurta's problem as Shlink would say it; `names` maps encurta's fields to Shlink's."""
    if problem.status == 401:
        return ShlinkError(
            401,
            "invalid-api-key",
            "Invalid API key",
            "Provided API key does not exist or is invalid.",
        )
    if problem.status == 403:
        # Shlink's keys have roles, not scopes; this is encurta's scope refusal in its format.
        return ShlinkError(403, "forbidden-operation", "Forbidden operation", problem.detail)
    if problem.status in (400, 413, 415, 422):
        reasons: dict[str, str] = {}
        for error in problem.errors or [{"field": "body", "message": problem.detail}]:
            field = str(error.get("field", "body"))
            head, _, rest = field.partition(".")
            name = names.get(head, head) + (f".{rest}" if rest else "")
            reasons.setdefault(name, str(error.get("message", "")))
        return invalid_data(reasons)
    return ShlinkError(
        problem.status,
        "not-found" if problem.status == 404 else "error",
        problem.title,
        problem.detail,
    )


def shlink_endpoint(handler: Handler, names: Mapping[str, str] | None = None) -> Handler:
    """`handler` with every refusal answered in Shlink's format, never encurta's, and
    readable by a page of any origin, as Shlink's are (`with_preflights`)."""

    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except ShlinkError as error:
            response = error.response()
        except Problem as problem:
            response = _translated(problem, names or {}).response()
            response.headers.update(problem.headers)  # a rate limit's Retry-After, RateLimit
        if "origin" in request.headers:
            response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return endpoint


# What Shlink's web client (a page served from elsewhere: app.shlink.io, or a team's own)
# sends. Any origin may call, as with Shlink: the API reads no cookie, only the X-Api-Key a
# page was given, so another site's page can do nothing its user could not.
_ALLOWED_HEADERS = "X-Api-Key, Content-Type, Accept"
_PREFLIGHT_SECONDS = "1000"  # Shlink's


def with_preflights(routes: Sequence[Route]) -> list[BaseRoute]:
    """`routes` and, for each of their paths, the OPTIONS answer a browser asks for before
    it sends a request with an X-Api-Key header."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        methods.setdefault(route.path, set()).update(route.methods or ())

    def preflight(allowed: set[str]) -> Handler:
        headers = {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": ", ".join(sorted(allowed - {"HEAD"})),
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": _PREFLIGHT_SECONDS,
        }

        async def answer(request: Request) -> Response:
            return Response(status_code=204, headers=headers)

        return answer

    return [
        *routes,
        *(
            Route(path, preflight(allowed), methods=["OPTIONS"])
            for path, allowed in methods.items()
        ),
    ]


async def api_key_caller(gate: Gate, request: Request, scope: str) -> Principal:
    """The owner of the `X-Api-Key` key, if it holds `scope`; else Shlink's 401."""
    key = request.headers.get(API_KEY_HEADER, "")
    if not key:
        raise ShlinkError(
            401,
            "missing-authentication",
            "Invalid authorization",
            f'Expected one of the following authentication headers, ["{API_KEY_HEADER}"], '
            "but none were provided",
            expectedHeaders=[API_KEY_HEADER],
        )
    return await gate.authenticate_key(key, scope)


def page_numbers(request: Request, default_per_page: int) -> tuple[int, int]:
    """`page` (from 1) and `itemsPerPage`, bounded: -1 or too many is `MAX_ITEMS_PER_PAGE`."""
    reasons = {}
    numbers = []
    for name, default in (("page", 1), ("itemsPerPage", default_per_page)):
        raw = request.query_params.get(name, "")
        try:
            value = int(raw) if raw.strip() else default
        except ValueError:
            reasons[name] = "Expected an integer."
            value = default
        numbers.append(value)
    page, per_page = numbers
    if page < 1 or page > 100_000:
        reasons["page"] = "Expected 1 to 100000."
    if per_page < 0 or per_page > MAX_ITEMS_PER_PAGE:
        per_page = MAX_ITEMS_PER_PAGE
    if per_page == 0:
        reasons["itemsPerPage"] = "Expected a positive number (or -1)."
    if reasons:
        raise invalid_data(reasons)
    return page, per_page


def pagination(page: int, per_page: int, shown: int, total: int) -> dict[str, int]:
    """Shlink's Paginator object."""
    return {
        "currentPage": page,
        "pagesCount": math.ceil(total / per_page) if per_page else 0,
        "itemsPerPage": per_page,
        "itemsInCurrentPage": shown,
        "totalItems": total,
    }


def atom(moment: datetime | None) -> str | None:
    """Shlink's dates: ISO 8601 to the second with an offset (PHP's DATE_ATOM)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def visits_summary(total: int, bots: int) -> dict[str, int]:
    return {"total": total, "nonBots": total - bots, "bots": bots}


def json_answer(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")
