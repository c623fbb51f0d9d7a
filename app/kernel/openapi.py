"""OpenAPI 3.1 from the routes actually registered, so the document cannot drift.

Each `ApiRoute` says what it reads (a JSON body model, a query model, a schema for a path
parameter) and what it answers. What every route with such a property can also answer is
added here, once, from the way `app.kernel.http` and `app.kernel.tokens` behave:

- a JSON body: 400 (not UTF-8 or not JSON), 413 (over 64 KiB), 415 (not JSON), 422;
- a query model: 422 naming the parameter;
- `auth`: 401 with a `WWW-Authenticate` challenge;
- a declared 429 or 503: its `Retry-After` header.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.convertors import (
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    StringConvertor,
    UUIDConvertor,
)
from starlette.routing import BaseRoute, Route

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "For validation problems: each bad field and what is wrong with it.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

# What each of Starlette's path convertors lets through, as JSON Schema.
_CONVERTOR_SCHEMAS: dict[type[Convertor[Any]], dict[str, Any]] = {
    StringConvertor: {"type": "string", "pattern": "^[^/]+$"},
    PathConvertor: {"type": "string"},
    IntegerConvertor: {"type": "integer", "minimum": 0},
    FloatConvertor: {"type": "number", "minimum": 0},
    UUIDConvertor: {"type": "string", "format": "uuid"},
}

# The answers of app.kernel.http.read_json, which every route with a body uses.
_BODY_PROBLEMS = {
    400: "The body is not JSON: not UTF-8, malformed, nested too deeply or cut short",
    413: "The body is larger than 64 KiB",
    415: "The body is not sent as JSON (Content-Type: application/json)",
    422: "A field of the body is invalid; `errors` names each one",
}
_QUERY_PROBLEM = "A query parameter is invalid; `errors` names each one"
_AUTH_PROBLEM = "No access token or API key, or one that is invalid, expired or revoked"
_SCOPE_PROBLEM = "The API key lacks the scope this needs (named in `detail`), or needs a login"

_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
}
_WWW_AUTHENTICATE = {
    "description": "The Bearer challenge (RFC 6750).",
    "schema": {"type": "string"},
}
_HEADERS_BY_STATUS = {
    401: {"WWW-Authenticate": _WWW_AUTHENTICATE},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


class ApiRoute(Route):
    """A Starlette route that also describes itself for the OpenAPI document.

    `body` is the model the endpoint reads with `read_json`, `query` the one it reads with
    `read_query`; `path_params` narrows a path parameter's schema beyond its convertor
    (a pattern, a length); `headers` names response headers per status (e.g. Location).
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        method: str,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        path_params: Mapping[str, Mapping[str, Any]] | None = None,
        responses: Mapping[int, type[BaseModel] | str] | None = None,
        headers: Mapping[int, Mapping[str, str]] | None = None,
        auth: bool = False,
        tag: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.summary = summary
        self.body = body
        self.query = query
        self.path_params = {name: dict(schema) for name, schema in (path_params or {}).items()}
        unknown = set(self.path_params) - set(self.param_convertors)
        if unknown:
            raise ValueError(f"{path} has no path parameter {', '.join(sorted(unknown))}")
        self.responses = dict(responses or {})
        self.headers = {status: dict(names) for status, names in (headers or {}).items()}
        self.auth = auth
        self.tag = tag
        self.description = description

    def all_responses(self) -> dict[int, type[BaseModel] | str]:
        """The declared responses and the ones every route like this one can give."""
        answers: dict[int, type[BaseModel] | str] = {}
        if self.body is not None:
            answers.update(_BODY_PROBLEMS)
        if self.query is not None:
            answers[422] = _QUERY_PROBLEM
        if self.auth:
            answers[401] = _AUTH_PROBLEM
            answers[403] = _SCOPE_PROBLEM
        answers.update(self.responses)
        return dict(sorted(answers.items()))


def openapi_document(routes: Iterable[BaseRoute], title: str, version: str) -> dict[str, Any]:
    api_routes = [route for route in routes if isinstance(route, ApiRoute)]
    inputs = {model for route in api_routes for model in (route.body, route.query) if model}
    outputs = {
        model
        for route in api_routes
        for model in route.responses.values()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    # A model read in one place and written in another gets a schema for each, named apart.
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in sorted(inputs, key=_name)),
        *((model, "serialization") for model in sorted(outputs - inputs, key=_name)),
    ]
    refs, definitions = models_json_schema(wanted, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return refs[(model, "validation" if model in inputs else mode)]

    def definition(model: type[BaseModel]) -> dict[str, Any]:
        name = ref(model, "validation")["$ref"].rsplit("/", 1)[1]
        found: dict[str, Any] = schemas[name]
        return found

    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in api_routes:
        operation: dict[str, Any] = {
            "operationId": _operation_id(route, operation_ids),
            "summary": route.summary,
        }
        if route.description:
            operation["description"] = route.description
        if route.tag:
            operation["tags"] = [route.tag]
        if route.auth:
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
        parameters = _path_parameters(route)
        if route.query is not None:
            parameters += _query_parameters(definition(route.query))
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.body, "validation")}},
            }
        operation["responses"] = {
            str(status): _response(route, status, answer, ref)
            for status, answer in route.all_responses().items()
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    # A query model is described by its parameters (in every route that reads it); it is
    # no body of anything.
    queries = {r.query for r in api_routes if r.query is not None}
    for model in queries - {r.body for r in api_routes}:
        schemas.pop(ref(model, "validation")["$ref"].rsplit("/", 1)[1], None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every error is `application/problem+json` (RFC 9457).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                # Also accepted as `Authorization: Bearer enc_...`.
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    }


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _operation_id(route: ApiRoute, taken: set[str]) -> str:
    base = f"{route.tag}.{route.name}" if route.tag else route.name
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def _path_parameters(route: ApiRoute) -> list[dict[str, Any]]:
    parameters = []
    for name, convertor in route.param_convertors.items():
        schema = dict(_CONVERTOR_SCHEMAS.get(type(convertor), {"type": "string"}))
        schema.update(route.path_params.get(name, {}))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(model_schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field of the query model. Absent and empty both mean the default
    (see read_query), so `null` is no value a parameter takes."""
    required = set(model_schema.get("required", []))
    parameters = []
    for name, field in model_schema.get("properties", {}).items():
        schema = _without_null(field)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if name not in required:
            parameter["allowEmptyValue"] = True  # `?from=` is as if `from` were absent
        description = schema.pop("description", None)
        if description:
            parameter["description"] = description
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    result = {key: value for key, value in schema.items() if key != "title"}
    if result.get("default", ...) is None:
        del result["default"]
    options = result.pop("anyOf", None)
    if options is not None:
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            result = {**kept[0], **result}
        else:
            result["anyOf"] = kept
    return result


def _response(
    route: ApiRoute,
    status: int,
    answer: type[BaseModel] | str,
    ref: Callable[[type[BaseModel], JsonSchemaMode], dict[str, Any]],
) -> dict[str, Any]:
    if isinstance(answer, str):
        response: dict[str, Any] = {"description": answer}
        if status >= 400:
            response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
    else:
        response = {
            "description": inspect.cleandoc(answer.__doc__ or answer.__name__),
            "content": {"application/json": {"schema": ref(answer, "serialization")}},
        }
    headers: dict[str, Any] = dict(_HEADERS_BY_STATUS.get(status, {}))
    for name, description in route.headers.get(status, {}).items():
        headers[name] = {"description": description, "required": True, "schema": {"type": "string"}}
    if headers:
        response["headers"] = headers
    return response
