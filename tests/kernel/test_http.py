"""Malformed request bodies: each gets the 4xx problem that says what is wrong, never a 500,
and nothing is stored.

The bodies are sent as raw bytes, so each case is exactly the bytes on the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.kernel.http import MAX_BODY_BYTES
from tests.conftest import asyncpg_dsn
from tests.support.accounts import PASSWORD
from tests.support.problems import TYPE_BASE, assert_problem

REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"
BOTH = [pytest.param(REGISTER, id="register"), pytest.param(LOGIN, id="login")]
JSON_TYPE = "application/json"


async def post(
    client: httpx.AsyncClient,
    path: str,
    body: bytes | AsyncIterator[bytes],
    content_type: str | None = JSON_TYPE,
) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return await client.post(path, content=body, headers=headers)


async def stored_users(database_urls: dict[str, str]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()
    return count


def as_json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


async def test_a_well_formed_body_sent_the_same_way_is_accepted(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    # The control for every case below: the same helper, a valid body, a stored user.
    response = await post(client, REGISTER, as_json(email="ana@example.com", password=PASSWORD))

    assert response.status_code == 201, response.text
    assert await stored_users(database_urls) == 1


@pytest.mark.parametrize("path", BOTH)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"email": "ana@example.com", "password": }', id="invalid-json"),
        pytest.param(b'{"email": "ana@example.com", "passw', id="truncated-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"   \n\t ", id="only-whitespace"),
        pytest.param(b"{'email': 'ana@example.com', 'password': 'x'}", id="single-quotes"),
        pytest.param(b'{"email": "ana@example.com"} trailing', id="trailing-garbage"),
        pytest.param(
            b'{"email": "ana\xff\xfe@example.com", "password": "' + PASSWORD.encode() + b'"}',
            id="invalid-utf8",
        ),
        # An encoded surrogate (CESU-8) is not UTF-8 either.
        pytest.param(
            b'{"email": "ana@example.com", "password": "\xed\xa0\x80' + PASSWORD.encode() + b'"}',
            id="utf8-encoded-surrogate",
        ),
        pytest.param(b"[" * 60_000, id="deeply-nested-arrays"),
        pytest.param(b'{"a": ' * 10_000, id="deeply-nested-objects"),
        # Python refuses to convert integers of more than 4300 digits.
        pytest.param(b'{"email": ' + b"9" * 5_000 + b', "password": "x"}', id="huge-integer"),
    ],
)
async def test_a_body_that_is_not_json_is_a_400(
    client: httpx.AsyncClient, database_urls: dict[str, str], path: str, body: bytes
) -> None:
    assert len(body) <= MAX_BODY_BYTES  # the size limit is not what refuses these

    problem = assert_problem(await post(client, path, body), 400)

    assert problem["type"] == TYPE_BASE + "malformed-json"
    assert await stored_users(database_urls) == 0


async def test_the_400_says_where_the_json_breaks(client: httpx.AsyncClient) -> None:
    response = await post(client, LOGIN, b'{\n  "email": "ana@example.com",\n  "password" "x"\n}')

    problem = assert_problem(response, 400)
    assert "line 3" in problem["detail"]


@pytest.mark.parametrize("path", BOTH)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="empty-array"),
        pytest.param(b'[{"email": "ana@example.com", "password": "x"}]', id="array-of-object"),
        pytest.param(b'"ana@example.com"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"42", id="number"),
        pytest.param(b"true", id="boolean"),
    ],
)
async def test_json_that_is_not_an_object_is_a_422_about_the_body(
    client: httpx.AsyncClient, database_urls: dict[str, str], path: str, body: bytes
) -> None:
    problem = assert_problem(await post(client, path, body), 422, fields={"body"})

    assert problem["type"] == TYPE_BASE + "validation-error"
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize("path", BOTH)
@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", id="form-urlencoded"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("application/xml", id="xml"),
        pytest.param("application/jsonx", id="json-lookalike"),
        pytest.param(None, id="no-content-type"),
    ],
)
async def test_a_body_not_declared_as_json_is_a_415(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    path: str,
    content_type: str | None,
) -> None:
    # The body itself is valid: only the declared media type is wrong.
    body = as_json(email="ana@example.com", password=PASSWORD)

    response = await post(client, path, body, content_type=content_type)

    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]
    assert await stored_users(database_urls) == 0


async def test_a_real_form_post_is_a_415(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    response = await client.post(REGISTER, data={"email": "ana@example.com", "password": PASSWORD})

    assert_problem(response, 415)
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"]
)
async def test_json_media_type_variants_are_read(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await post(
        client, LOGIN, as_json(email="ana@example.com", password=PASSWORD), content_type
    )

    assert_problem(response, 401)  # read and checked: an unknown account, not a 415


def padded(size: int) -> bytes:
    """A valid login body padded with whitespace to exactly `size` bytes."""
    body = as_json(email="ana@example.com", password=PASSWORD)
    return body + b" " * (size - len(body))


async def test_a_body_of_exactly_the_limit_is_read(client: httpx.AsyncClient) -> None:
    response = await post(client, LOGIN, padded(MAX_BODY_BYTES))

    assert_problem(response, 401)


@pytest.mark.parametrize("path", BOTH)
async def test_a_body_over_64_kib_with_content_length_is_a_413(
    client: httpx.AsyncClient, database_urls: dict[str, str], path: str
) -> None:
    body = as_json(email="ana@example.com", password=PASSWORD, first_name="x" * MAX_BODY_BYTES)

    response = await post(client, path, body)

    assert response.request.headers["content-length"] == str(len(body))
    problem = assert_problem(response, 413)
    assert "64 KiB" in problem["detail"]
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize("path", BOTH)
async def test_a_streamed_body_over_64_kib_is_a_413_and_is_not_read_to_the_end(
    client: httpx.AsyncClient, database_urls: dict[str, str], path: str
) -> None:
    chunk_size, chunks = 8 * 1024, 64  # 512 KiB on offer
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"email": "ana@example.com", "password": "' + PASSWORD.encode() + b'", "x": "'
        for _ in range(chunks):
            sent += 1
            yield b"x" * chunk_size

    response = await post(client, path, stream())

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    # Reading stops soon after the limit, not at the end of what the client offers.
    assert sent * chunk_size <= MAX_BODY_BYTES + 2 * chunk_size
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        pytest.param(REGISTER, {}, {"email", "password"}, id="register-empty-object"),
        pytest.param(REGISTER, {"email": "ana@example.com"}, {"password"}, id="register-email"),
        pytest.param(REGISTER, {"password": PASSWORD}, {"email"}, id="register-password"),
        pytest.param(LOGIN, {}, {"email", "password"}, id="login-empty-object"),
        pytest.param(LOGIN, {"email": "ana@example.com"}, {"password"}, id="login-email"),
        pytest.param(
            LOGIN, {"Email": "a@b.c", "PASSWORD": "x"}, {"email", "password"}, id="login-wrong-case"
        ),
    ],
)
async def test_each_missing_field_is_named(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    path: str,
    body: dict[str, Any],
    missing: set[str],
) -> None:
    response = await post(client, path, json.dumps(body).encode())

    problem = assert_problem(response, 422, fields=missing)
    assert all(e["message"] == "This field is required." for e in problem["errors"])
    for field in missing:
        assert field in problem["detail"]
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    ("path", "changes", "bad"),
    [
        pytest.param(REGISTER, {"email": 42}, {"email"}, id="register-email-number"),
        pytest.param(REGISTER, {"password": [PASSWORD]}, {"password"}, id="register-password-list"),
        pytest.param(REGISTER, {"first_name": {"a": 1}}, {"first_name"}, id="first-name-object"),
        pytest.param(REGISTER, {"last_name": 7}, {"last_name"}, id="last-name-number"),
        pytest.param(REGISTER, {"email": None}, {"email"}, id="register-email-null"),
        pytest.param(REGISTER, {"password": True}, {"password"}, id="register-password-bool"),
        pytest.param(
            REGISTER,
            {"email": 42, "password": [PASSWORD], "first_name": {"a": 1}, "last_name": 7},
            {"email", "password", "first_name", "last_name"},
            id="register-all-wrong",
        ),
        pytest.param(LOGIN, {"email": 42}, {"email"}, id="login-email-number"),
        pytest.param(LOGIN, {"password": [PASSWORD]}, {"password"}, id="login-password-list"),
        pytest.param(
            LOGIN,
            {"email": {"$ne": ""}, "password": {"$ne": ""}},
            {"email", "password"},
            id="login-operator-objects",
        ),
    ],
)
async def test_each_field_of_the_wrong_type_is_named(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    path: str,
    changes: dict[str, Any],
    bad: set[str],
) -> None:
    body = {"email": "ana@example.com", "password": PASSWORD, **changes}

    assert_problem(await post(client, path, json.dumps(body).encode()), 422, fields=bad)
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    ("path", "changes", "bad"),
    [
        pytest.param(REGISTER, {"email": "ana\x00@example.com"}, "email", id="register-email"),
        pytest.param(REGISTER, {"first_name": "Ana\x00"}, "first_name", id="register-first-name"),
        pytest.param(REGISTER, {"last_name": "\x00Lima"}, "last_name", id="register-last-name"),
        pytest.param(LOGIN, {"email": "ana\x00@example.com"}, "email", id="login-email"),
    ],
)
async def test_a_nul_character_inside_a_string_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    database_urls: dict[str, str],
    path: str,
    changes: dict[str, Any],
    bad: str,
) -> None:
    # PostgreSQL text cannot hold U+0000: such a value must be refused, not sent to the database.
    body = json.dumps({"email": "ana@example.com", "password": PASSWORD, **changes}).encode()
    assert b"\\u0000" in body

    assert_problem(await post(client, path, body), 422, fields={bad})
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        pytest.param(REGISTER, "password", id="register-password"),
        pytest.param(REGISTER, "first_name", id="register-first-name"),
        pytest.param(LOGIN, "email", id="login-email"),
        pytest.param(LOGIN, "password", id="login-password"),
    ],
)
async def test_a_lone_surrogate_escape_is_a_422_naming_the_field(
    client: httpx.AsyncClient, database_urls: dict[str, str], path: str, field: str
) -> None:
    # Valid JSON syntax, but "\ud800" is no Unicode character: it cannot be encoded to UTF-8,
    # hashed or stored.
    body = {"email": "ana@example.com", "password": PASSWORD}
    body[field] = "\ud800" + body.get(field, "Ana")
    raw = json.dumps(body).encode()
    assert b"\\ud800" in raw

    assert_problem(await post(client, path, raw), 422, fields={field})
    assert await stored_users(database_urls) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing/here"),  # one segment would be a short code
        ("GET", "/api/auth"),
        ("POST", "/api/auth/signup"),
        ("GET", "/api/auth/register/extra"),
        ("DELETE", "/api/nothing/abc"),
    ],
)
async def test_unknown_routes_are_a_404_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)

    problem = assert_problem(response, 404)
    assert path in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", LOGIN, "POST"),
        ("GET", REGISTER, "POST"),
        ("PUT", REGISTER, "POST"),
        ("PUT", "/api/auth/me", "GET, DELETE"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_a_wrong_method_is_a_405_problem_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    problem = assert_problem(response, 405)
    assert method in problem["detail"] and path in problem["detail"]
    assert set(allowed.split(", ")) <= set(response.headers["allow"].split(", "))


# --- Content-Length that int() cannot read, a client that leaves mid-body ------------------


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        # Leading zeros are valid HTTP: the HTTP parser lets 5000 digits through.
        pytest.param("0" * 4992 + "99999999", 413, id="5000-digits-over-the-limit"),
        pytest.param("0" * 4998 + "2", 422, id="5000-digits-of-a-small-length"),
        pytest.param("²", 413, id="a-digit-int-refuses"),
        pytest.param("-1", 413, id="negative"),
    ],
)
async def test_a_content_length_int_cannot_read_is_a_4xx_not_a_500(
    client: httpx.AsyncClient, declared: str, status: int
) -> None:
    raw = declared.encode("latin-1")  # as a header carries it
    response = await client.post(
        REGISTER, content=b"{}", headers={"content-type": JSON_TYPE, "content-length": raw}
    )

    assert (b"content-length", raw) in [(k.lower(), v) for k, v in response.request.headers.raw]
    assert_problem(response, status)


async def test_a_client_leaving_mid_body_is_a_debug_line_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pydantic import BaseModel
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from app.kernel.http import read_json
    from app.kernel.problems import EXCEPTION_HANDLERS

    class Body(BaseModel):
        text: str

    async def route(request: Request) -> Response:
        await read_json(request, Body)
        return Response("read")

    app = Starlette(
        routes=[Route("/", route, methods=["POST"])],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    events = [
        {"type": "http.request", "body": b'{"text": "', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
    }
    with caplog.at_level("DEBUG"):
        await app(scope, receive, send)

    assert sent[0]["status"] == 400  # to nobody: the server drops it
    assert [r.levelname for r in caplog.records if r.levelno >= 30] == []
    assert any("the client left" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)
