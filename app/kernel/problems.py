"""Errors as RFC 9457 `application/problem+json`, the one error shape of every module."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.kernel.logs import REQUEST_ID_KEY

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://encurta.dev/problems/"


class Problem(Exception):
    """Raise one anywhere in a request to answer it with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        phrase = HTTPStatus(status).phrase
        self.status = status
        self.detail = detail
        self.title = title or phrase
        self.type = _TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", ""))
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid_fields(errors: Sequence[Mapping[str, str]], where: str = "request body") -> Problem:
    """A 422 that names every bad field, as `{field, message}`."""
    fields = ", ".join(sorted({error["field"] for error in errors}))
    return Problem(
        422,
        f"The {where} is invalid: {fields}.",
        slug="validation-error",
        title="Validation failed",
        errors=errors,
    )


def validation_problem(error: ValidationError, where: str = "request body") -> Problem:
    errors = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        errors.append({"field": field, "message": _message(item)})
    return invalid_fields(errors, where)


def _message(item: Mapping[str, Any]) -> str:
    if item["type"] == "missing":
        return "This field is required."
    message = str(item["msg"])
    # pydantic prefixes errors raised by our own validators with this
    return message.removeprefix("Value error, ")


def failed(request_id: str | None = None) -> Problem:
    """The answer to an unhandled error. The detail stays generic: an exception's text may
    hold data. With the request's id (also its `X-Request-Id`), which the logged error
    carries too, so a user can report it and an operator find it."""
    if request_id is None:
        return Problem(500, "The server failed to answer; the error is logged.")
    return Problem(
        500,
        f"The server failed to answer; the error is logged with request id {request_id}.",
        headers={"X-Request-Id": request_id},
    )


def problem_response(problem: Problem) -> Response:
    return Response(
        json.dumps(problem.to_dict()),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _answer(request: Request, problem: Problem) -> Response:
    """A page for a browser navigating to it, the problem document for anyone else."""
    from app.kernel.web import PAGE_HEADERS, error_page, wants_html  # Jinja2: on first use

    if wants_html(request):
        body = error_page(problem.status, problem.title, problem.detail, request=request)
        return HTMLResponse(body, problem.status, headers={**PAGE_HEADERS, **problem.headers})
    return problem_response(problem)


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return _answer(request, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = detail or f"Nothing is found at {request.url.path}."
    elif exc.status_code == 405:
        detail = detail or f"{request.method} is not allowed on {request.url.path}."
        # Starlette names the methods of the first route on this path; there may be more.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return _answer(
        request,
        Problem(exc.status_code, detail or HTTPStatus(exc.status_code).phrase, headers=headers),
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # The detail stays generic: an exception's text may hold data we must not echo.
    # The request log's context has ended by now (this runs outside its middleware): the
    # request id comes from the scope.
    rid = request.scope.get(REQUEST_ID_KEY)
    log.exception(
        "unhandled error on %s %s", request.method, request.url.path, extra={"request_id": rid}
    )
    return problem_response(failed(rid))


EXCEPTION_HANDLERS = {
    Problem: handle_problem,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
