"""OpenAPI 3.1 from the routes actually registered, so the document cannot drift."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


class ApiRoute(Route):
    """A Starlette route that also describes itself for the OpenAPI document."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        method: str,
        summary: str,
        body: type[BaseModel] | None = None,
        responses: Mapping[int, type[BaseModel] | str] | None = None,
        auth: bool = False,
        tag: str | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.summary = summary
        self.body = body
        self.responses = dict(responses or {})
        self.auth = auth
        self.tag = tag


def openapi_document(routes: Iterable[BaseRoute], title: str, version: str) -> dict[str, Any]:
    api_routes = [route for route in routes if isinstance(route, ApiRoute)]
    models = {
        model
        for route in api_routes
        for model in [route.body, *route.responses.values()]
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    refs, definitions = models_json_schema(
        [(model, "validation" if _is_body(model, api_routes) else "serialization")
         for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        mode = "validation" if _is_body(model, api_routes) else "serialization"
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for route in api_routes:
        operation: dict[str, Any] = {"summary": route.summary, "responses": {}}
        if route.tag:
            operation["tags"] = [route.tag]
        if route.auth:
            operation["security"] = [{"bearer": []}]
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.body)}},
            }
        for status, answer in sorted(route.responses.items()):
            if isinstance(answer, str):
                response: dict[str, Any] = {"description": answer}
                if status >= 400:
                    response["content"] = {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }
            else:
                response = {
                    "description": answer.__doc__ or answer.__name__,
                    "content": {"application/json": {"schema": ref(answer)}},
                }
            operation["responses"][str(status)] = response
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _is_body(model: type[BaseModel], routes: list[ApiRoute]) -> bool:
    return any(route.body is model for route in routes)
