"""The one check of an error answer: every module answers errors as RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

# Spelled out rather than imported from the app: the test pins the contract, not a constant.
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://encurta.dev/problems/"


def assert_problem(
    response: httpx.Response, status: int, *, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """Assert `response` is a problem document of `status` and return its body.

    With `fields`, `errors` must name exactly those fields, each once, in any order: a 422
    that names the wrong field, or none, tells the client nothing it can fix.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["type"].startswith(TYPE_BASE), body
    assert body["title"] and body["detail"], body
    if fields is not None:
        errors = body.get("errors")
        assert isinstance(errors, list), body
        for error in errors:
            assert set(error) == {"field", "message"} and error["message"], body
        assert sorted(error["field"] for error in errors) == sorted(fields), body
    return body
