"""`/docs`: the API reference, rendered on the server from the OpenAPI document.

Plain HTML in the shared layout, not a JavaScript renderer: Redoc, Scalar and Swagger UI
inject inline styles, which the pages' CSP (`style-src 'self'`) refuses, and they would be
a vendored megabyte to load before anything shows. A page made here is fast, readable
without script, accessible (headings, tables, a table of contents of links) and cannot
drift from `/openapi.json`: it is made from the same document.

`reference(document)` turns the document into view data (operations grouped by tag, each
schema's fields with `$ref`s resolved, nested one level); `docs.html` only lays it out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.kernel.web.pages import Pages

_METHODS = ("get", "post", "put", "patch", "delete")
_REF = "#/components/schemas/"
# The document's tags, in the order a reader meets them; any other tag comes after.
_TAG_ORDER = ("auth", "keys", "links", "analytics", "redirect", "admin", "health")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    enum: list[str]
    fields: list[Field] = field(default_factory=list)  # an object's own fields, one level
    where: str = ""  # a parameter's place: path, query


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    media: str  # application/json, application/problem+json, or "" without a body
    schema: str  # the named schema of the body, if any


@dataclass(frozen=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    auth: bool
    parameters: list[Field]
    body: str  # the request body's schema name ("" without a body)
    body_fields: list[Field]
    answers: list[Answer]


@dataclass(frozen=True)
class Tag:
    name: str
    anchor: str
    operations: list[Operation]


def reference(document: Mapping[str, Any]) -> list[Tag]:
    """The document's operations grouped by tag, in a reader's order."""
    schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
    grouped: dict[str, list[Operation]] = {}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                operation = _operation(method, path, item[method], schemas)
                tag = (item[method].get("tags") or ["other"])[0]
                grouped.setdefault(tag, []).append(operation)

    def order(tag: str) -> tuple[int, str]:
        return (_TAG_ORDER.index(tag) if tag in _TAG_ORDER else len(_TAG_ORDER), tag)

    return [Tag(tag, f"tag-{_slug(tag)}", grouped[tag]) for tag in sorted(grouped, key=order)]


def _operation(
    method: str, path: str, operation: Mapping[str, Any], schemas: Mapping[str, Any]
) -> Operation:
    parameters = [
        _field(
            str(p["name"]),
            {
                **p.get("schema", {}),
                **({"description": p["description"]} if "description" in p else {}),
            },
            p.get("required", False),
            schemas,
            where=p["in"],
        )
        for p in operation.get("parameters", [])
    ]
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ).get("schema", {})
    body_name, body = _resolve(body_schema, schemas)
    return Operation(
        anchor=_slug(operation.get("operationId") or f"{method}-{path}"),
        method=method.upper(),
        path=path,
        summary=operation.get("summary", ""),
        description=operation.get("description", ""),
        auth=bool(operation.get("security")),
        parameters=parameters,
        body=body_name,
        body_fields=_fields(body, schemas, depth=1) if body_schema else [],
        answers=[
            _answer(status, answer) for status, answer in operation.get("responses", {}).items()
        ],
    )


def _answer(status: str, answer: Mapping[str, Any]) -> Answer:
    content: Mapping[str, Any] = answer.get("content", {})
    media = next(iter(content), "")
    ref = content[media].get("schema", {}).get("$ref", "") if media else ""
    return Answer(status, answer.get("description", ""), media, ref.removeprefix(_REF))


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A `$ref` followed to its schema: (its name, the schema); else ("", the schema)."""
    ref = schema.get("$ref", "")
    if ref.startswith(_REF):
        name = ref.removeprefix(_REF)
        return name, {**schemas.get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    return "", dict(schema)


def _options(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of an `anyOf`/`oneOf`, or the schema itself."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return [dict(schema)]
    return [option for option in options if option.get("type") != "null"] or [dict(schema)]


def _fields(schema: Mapping[str, Any], schemas: Mapping[str, Any], depth: int) -> list[Field]:
    required = set(schema.get("required", []))
    return [
        _field(name, prop, name in required, schemas, depth=depth)
        for name, prop in schema.get("properties", {}).items()
    ]


def _field(
    name: str,
    schema: Mapping[str, Any],
    required: bool,
    schemas: Mapping[str, Any],
    *,
    depth: int = 0,
    where: str = "",
) -> Field:
    options = _options(schema)
    enum: list[str] = []
    nested: list[Field] = []
    description = str(schema.get("description", ""))
    for option in options:
        _, resolved = _resolve(option, schemas)
        description = description or str(resolved.get("description", ""))
        items = resolved.get("items")
        if isinstance(items, Mapping):
            _, resolved = _resolve(items, schemas)
        enum.extend(str(value) for value in resolved.get("enum", []))
        if depth > 0 and "properties" in resolved:
            nested = _fields(resolved, schemas, depth=depth - 1)
    kind = " or ".join(_type(option, schemas) for option in options)
    if len(options) < len(schema.get("anyOf") or schema.get("oneOf") or options):
        kind += " or null"
    default = schema.get("default")
    if default is not None and not required and "default" not in description.lower():
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        description = f"{description} Default: {shown}.".strip()
    return Field(name, kind, required, description, enum, nested, where)


def _type(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    name, resolved = _resolve(schema, schemas)
    if name:
        return name
    kind = resolved.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "array":
        items = resolved.get("items")
        return f"array of {_type(items, schemas)}" if isinstance(items, Mapping) else "array"
    if "format" in resolved:
        return f"{kind} ({resolved['format']})"
    return str(kind)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "op"


@functools.cache
def _pages() -> Pages:
    return Pages()


def docs_page(request: Request, document: Mapping[str, Any], tags: list[Tag]) -> HTMLResponse:
    """The page: the layout's navigation follows the session cookie, like the error page."""
    info = document.get("info", {})
    context = {"tags": tags, "title": info.get("title", "API"), "version": info.get("version")}
    return _pages().render(request, "docs.html", context)
