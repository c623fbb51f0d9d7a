"""The served OpenAPI document: valid 3.1, every path and query parameter declared, and
every answer a route can give documented, including the generic problem responses of a
body (400, 413, 415, 422) and of a token (401)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.requests import Request
from starlette.responses import Response

from app.kernel.http import MAX_BODY_BYTES
from app.kernel.openapi import ApiRoute, openapi_document
from app.modules.analytics.schemas import StatsQuery
from app.modules.shortener.schemas import PageQuery
from tests.support.accounts import bearer, login, register

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[Operation]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def fill(path: str) -> str:
    """A concrete path for a template: every parameter a code no link has."""
    return re.sub(r"\{[^}]+\}", "no-such-code", path)


async def test_the_served_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


async def test_every_path_parameter_is_declared_with_the_code_rule(
    document: dict[str, Any],
) -> None:
    templated = [(m, p, op) for m, p, op in operations(document) if "{code}" in p]
    assert {p for _, p, _ in templated} == {
        "/{code}",
        "/api/admin/links/{code}",
        "/api/links/{code}",
        "/api/links/{code}/live",
        "/api/links/{code}/qr",
        "/api/stats/{code}",
        "/api/stats/{code}/live",
        "/api/stats/{code}/clicks",
    }
    for method, path, operation in templated:
        declared = [p for p in operation.get("parameters", []) if p["in"] == "path"]
        assert [p["name"] for p in declared] == re.findall(r"\{([^}:]+)", path), (method, path)
        assert declared[0]["required"] is True
        pattern = re.compile(declared[0]["schema"]["pattern"])
        assert pattern.search("abc_DEF-123") and pattern.search("x" * 64)
        assert not any(pattern.search(bad) for bad in ["", "x" * 65, "a\x00b", "a.b", "a b"])


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [("GET", "/api/links", PageQuery), ("GET", "/api/stats/{code}", StatsQuery)],
)
async def test_query_parameters_come_from_the_model_the_route_validates_with(
    document: dict[str, Any], method: str, path: str, model: type
) -> None:
    operation = document["paths"][path][method.lower()]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    names = {field.alias or name for name, field in model.model_fields.items()}
    assert set(query) == names
    assert 422 in {int(status) for status in operation["responses"]}
    for parameter in query.values():
        assert parameter["required"] is False and parameter["allowEmptyValue"] is True
        assert "null" not in str(parameter["schema"])


async def test_query_rules_are_in_the_document(document: dict[str, Any]) -> None:
    links = document["paths"]["/api/links"]["get"]["parameters"]
    stats = document["paths"]["/api/stats/{code}"]["get"]["parameters"]
    schema = {p["name"]: p["schema"] for p in links + stats}

    assert {"type": "integer", "minimum": 1, "maximum": 100}.items() <= schema["per_page"].items()
    assert schema["page"]["minimum"] == 1
    assert schema["interval"]["enum"] == ["hour", "day", "week"]
    assert schema["include_bots"]["type"] == "boolean"
    when = re.compile(schema["from"]["pattern"])
    assert when.search("2024-05-01") and when.search("2024-05-01T12:00:00+02:00")
    assert not any(when.search(bad) for bad in ["1700000000", "20240501", "1969-12-31"])


async def test_routes_with_a_body_or_a_token_document_the_generic_problems(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        statuses = {int(status) for status in operation["responses"]}
        if "requestBody" in operation:
            assert {400, 413, 415, 422} <= statuses, (method, path)
        if operation.get("security"):
            assert 401 in statuses, (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        if 429 in statuses:
            assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert not any(status >= 500 and status != 503 for status in statuses), (method, path)


def assert_documented(
    document: dict[str, Any], method: str, path: str, response: httpx.Response
) -> None:
    """The answer's status is documented for the operation, as a problem document."""
    operation = document["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (method, path, response.status_code, response.text)
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in documented["content"], (method, path, media_type)
    jsonschema.validate(response.json(), document["components"]["schemas"]["Problem"])


async def test_every_body_route_answers_bad_bodies_as_documented(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    await register(client)
    auth = bearer((await login(client))["access_token"])
    bad_bodies = {
        400: {"content": b'{"url": ', "headers": {"Content-Type": "application/json"}},
        413: {
            "content": b'{"a": "' + b"x" * MAX_BODY_BYTES + b'"}',
            "headers": {"Content-Type": "application/json"},
        },
        415: {"content": b"url=x", "headers": {"Content-Type": "text/plain"}},
        422: {"content": b"[]", "headers": {"Content-Type": "application/json"}},
    }
    with_body = [(m, p) for m, p, op in operations(document) if "requestBody" in op]
    assert len(with_body) >= 6
    for method, path in with_body:
        for status, request in bad_bodies.items():
            headers = {**request["headers"], **auth}
            response = await client.request(
                method, fill(path), content=request["content"], headers=headers
            )
            assert response.status_code == status, (method, path, response.text)
            assert_documented(document, method, path, response)


async def test_every_token_route_answers_without_a_token_as_documented(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    secured = [(m, p) for m, p, op in operations(document) if op.get("security")]
    assert len(secured) >= 7
    for method, path in secured:
        for headers in ({}, {"Authorization": "Bearer not.a.token"}):
            response = await client.request(method, fill(path), headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert_documented(document, method, path, response)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def _endpoint(request: Request) -> Response:
    return Response()


def test_path_parameters_follow_their_convertor_and_unknown_ones_are_refused() -> None:
    routes = [
        ApiRoute(
            "/things/{id:int}/{name}",
            _endpoint,
            method="GET",
            summary="A thing",
            path_params={"name": {"maxLength": 10}},
            responses={200: "The thing"},
        ),
        ApiRoute(
            "/files/{rest:path}",
            _endpoint,
            method="GET",
            summary="A file",
            responses={200: "The file"},
        ),
        ApiRoute(
            "/by-id/{key:uuid}", _endpoint, method="GET", summary="By id", responses={200: "It"}
        ),
    ]
    document = openapi_document(routes, title="t", version="1")
    validate(document, cls=OpenAPIV31SpecValidator)
    schemas = {
        p["name"]: p["schema"]
        for item in document["paths"].values()
        for p in item["get"]["parameters"]
    }
    assert schemas["id"] == {"type": "integer", "minimum": 0}
    assert schemas["name"] == {"type": "string", "pattern": "^[^/]+$", "maxLength": 10}
    assert schemas["rest"] == {"type": "string"}
    assert schemas["key"] == {"type": "string", "format": "uuid"}

    with pytest.raises(ValueError, match="no path parameter code"):
        ApiRoute("/things/{id}", _endpoint, method="GET", summary="x", path_params={"code": {}})


async def test_an_account_id_is_declared_as_a_uuid(document: dict[str, Any]) -> None:
    [declared] = document["paths"]["/api/admin/users/{id}"]["patch"]["parameters"]
    assert (declared["name"], declared["in"], declared["required"]) == ("id", "path", True)
    assert (declared["schema"]["type"], declared["schema"]["format"]) == ("string", "uuid")
