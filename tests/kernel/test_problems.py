"""The problem documents (RFC 9457), without a database."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.kernel.problems import (
    EXCEPTION_HANDLERS,
    PROBLEM_JSON,
    Problem,
    problem_response,
    validation_problem,
)
from tests.support.problems import TYPE_BASE, assert_problem


class Link(BaseModel):
    url: str = Field(min_length=1)
    tags: list[str] = []


class Batch(BaseModel):
    name: str
    links: list[Link]
    owner: dict[str, int] = {}

    @field_validator("name")
    @classmethod
    def _not_admin(cls, name: str) -> str:
        if name == "admin":
            raise ValueError("Choose another name.")
        return name


class Range(BaseModel):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def validation_error(model: type[BaseModel], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value


# Problem.to_dict


def test_to_dict_has_the_four_members_and_no_errors_when_there_are_none() -> None:
    problem = Problem(404, "Nothing is found at /x.")

    assert problem.to_dict() == {
        "type": TYPE_BASE + "not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Nothing is found at /x.",
    }


def test_to_dict_lists_the_errors_when_there_are_some() -> None:
    errors = [{"field": "email", "message": "This field is required."}]

    body = Problem(422, "Invalid.", errors=errors).to_dict()

    assert body["errors"] == errors


@pytest.mark.parametrize(
    ("status", "slug"),
    [
        (400, "bad-request"),
        (401, "unauthorized"),
        (413, "request-entity-too-large"),
        (415, "unsupported-media-type"),
        (418, "im-a-teapot"),
        (429, "too-many-requests"),
        (503, "service-unavailable"),
    ],
)
def test_the_type_defaults_to_a_slug_of_the_status_phrase(status: int, slug: str) -> None:
    assert Problem(status, "detail").type == TYPE_BASE + slug


def test_slug_and_title_can_be_chosen() -> None:
    problem = Problem(409, "Taken.", slug="email-taken", title="Email taken")

    body = problem.to_dict()
    assert body["type"] == TYPE_BASE + "email-taken"
    assert body["title"] == "Email taken"
    assert body["status"] == 409


def test_to_dict_is_json_and_the_headers_stay_out_of_the_body() -> None:
    problem = Problem(429, "Slow down.", headers={"Retry-After": "7"})

    body = json.loads(json.dumps(problem.to_dict()))

    assert "Retry-After" not in json.dumps(body)
    assert problem.headers == {"Retry-After": "7"}


def test_the_problem_is_an_exception_whose_message_is_the_detail() -> None:
    with pytest.raises(Problem, match=r"^Nope\.$"):
        raise Problem(403, "Nope.")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="599"):
        Problem(599, "not a status")


def test_the_response_is_problem_json_with_status_and_headers() -> None:
    response = problem_response(Problem(429, "Slow down.", headers={"Retry-After": "7"}))

    assert response.status_code == 429
    assert response.media_type == PROBLEM_JSON
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "7"
    assert json.loads(bytes(response.body))["detail"] == "Slow down."


# validation_problem


def test_validation_problem_names_top_level_fields() -> None:
    problem = validation_problem(validation_error(Batch, {}))

    assert problem.status == 422
    assert problem.type == TYPE_BASE + "validation-error"
    assert problem.title == "Validation failed"
    assert {e["field"] for e in problem.errors} == {"name", "links"}
    assert all(e["message"] == "This field is required." for e in problem.errors)


def test_validation_problem_names_nested_locations_with_dots() -> None:
    data = {
        "name": "batch",
        "links": [{"url": "https://a.example"}, {"url": ""}, {"url": "x", "tags": ["ok", 3]}],
        "owner": {"id": "not a number"},
    }

    problem = validation_problem(validation_error(Batch, data))

    assert [e["field"] for e in problem.errors] == ["links.1.url", "links.2.tags.1", "owner.id"]
    assert problem.detail == "The request body is invalid: links.1.url, links.2.tags.1, owner.id."


def test_validation_problem_names_a_missing_nested_field() -> None:
    problem = validation_problem(validation_error(Batch, {"name": "b", "links": [{}]}))

    assert problem.errors == [{"field": "links.0.url", "message": "This field is required."}]


def test_a_whole_model_error_is_about_the_body() -> None:
    problem = validation_problem(validation_error(Range, {"low": 5, "high": 1}))

    assert problem.errors == [{"field": "body", "message": "low must not exceed high"}]


def test_our_own_validator_messages_lose_pydantics_prefix() -> None:
    problem = validation_problem(validation_error(Batch, {"name": "admin", "links": []}))

    assert problem.errors == [{"field": "name", "message": "Choose another name."}]


def test_validation_problem_never_echoes_the_input() -> None:
    secret = "hunter2-do-not-echo"

    problem = validation_problem(validation_error(Range, {"low": secret, "high": 1}))

    assert secret not in json.dumps(problem.to_dict())
    assert [e["field"] for e in problem.errors] == ["low"]


def test_each_field_is_listed_once_in_the_detail() -> None:
    data = {"name": "b", "links": [{"url": "x", "tags": [1, 2]}]}

    problem = validation_problem(validation_error(Batch, data))

    assert len(problem.errors) == 2
    assert problem.detail == "The request body is invalid: links.0.tags.0, links.0.tags.1."


# the handlers, through a bare Starlette app


SECRET = "postgresql://app:s3cretpw@db/x"


def problem_app() -> Starlette:
    async def boom(request: Request) -> Response:
        raise RuntimeError(f"could not connect to {SECRET}")

    async def teapot(request: Request) -> Response:
        raise Problem(418, "Short and stout.", headers={"X-Why": "tea"})

    async def gone(request: Request) -> Response:
        raise HTTPException(410, detail="This link was removed.")

    async def plain(request: Request) -> Response:
        raise HTTPException(400)

    return Starlette(
        routes=[
            Route("/boom", boom),
            Route("/teapot", teapot),
            Route("/gone", gone),
            Route("/plain", plain),
            Route("/only-post", plain, methods=["POST"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=problem_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://problems.test") as client:
        yield client


async def test_an_unexpected_error_is_a_generic_500_that_never_echoes_the_exception(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.kernel.problems"):
        response = await http.get("/boom")

    body = assert_problem(response, 500)
    assert body == {
        "type": TYPE_BASE + "internal-server-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The server failed to answer; the error is logged.",
    }
    assert "s3cretpw" not in response.text and "RuntimeError" not in response.text
    # ...and the error is indeed logged, for the operator.
    [record] = [r for r in caplog.records if r.name == "app.kernel.problems"]
    assert record.exc_info is not None and "GET /boom" in record.getMessage()


async def test_a_raised_problem_is_answered_as_is(http: httpx.AsyncClient) -> None:
    response = await http.get("/teapot")

    body = assert_problem(response, 418)
    assert body["detail"] == "Short and stout."
    assert response.headers["x-why"] == "tea"


async def test_an_http_exception_keeps_its_own_detail(http: httpx.AsyncClient) -> None:
    body = assert_problem(await http.get("/gone"), 410)

    assert body["detail"] == "This link was removed."
    assert body["type"] == TYPE_BASE + "gone"


async def test_an_http_exception_without_detail_gets_its_phrase(http: httpx.AsyncClient) -> None:
    body = assert_problem(await http.get("/plain"), 400)

    assert body["detail"] == "Bad Request"


async def test_404_and_405_say_what_and_where(http: httpx.AsyncClient) -> None:
    not_found = assert_problem(await http.get("/missing"), 404)
    not_allowed = await http.get("/only-post")

    assert not_found["detail"] == "Nothing is found at /missing."
    assert assert_problem(not_allowed, 405)["detail"] == "GET is not allowed on /only-post."
    assert not_allowed.headers["allow"] == "POST"
