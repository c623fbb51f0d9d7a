"""One JSON line per request outside the redirect path, with the id the answer carries, and
never a credential or an address: a real app on the embedded PostgreSQL, its log read back
as JSON; and once through a real `encurta serve`."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from app.config import Settings
from app.kernel.logs import configure
from app.kernel.metrics import MetricsSettings
from app.kernel.request_log import RequestLog
from app.main import create_app
from tests.conftest import AppFactory, traversable_tmp, truncate_all
from tests.support.accounts import PASSWORD, bearer, login, new_account, register, shorten
from tests.support.waiting import eventually
from tests.test_serve import Server

pytestmark = pytest.mark.integration

CLIENT_IP = "203.0.113.7"  # what app_client's transport says the client is


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure("json", "info", stream, force=True)
    yield stream
    root.removeHandler(handler)  # type: ignore[arg-type]
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def requests(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in records(stream) if line["logger"] == "encurta.request"]


def line_of(stream: io.StringIO, response: httpx.Response) -> dict[str, Any]:
    [line] = [r for r in requests(stream) if r["request_id"] == response.headers["x-request-id"]]
    return line


async def test_no_secret_and_no_address_reaches_the_log(
    client: httpx.AsyncClient, output: io.StringIO
) -> None:
    await register(client, "ana@example.com")
    token = (await login(client, "ana@example.com"))["access_token"]
    made = await client.post(
        "/api/keys", json={"name": "ci", "scopes": ["links:read"]}, headers=bearer(token)
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    listed = await eventually(
        lambda: client.get("/api/links", headers={"X-Api-Key": key}),
        lambda response: response.status_code == 200,
        what="the key reaches the shortener",
    )
    yourls = await client.get("/yourls-api.php", params={"signature": key, "action": "stats"})
    wrong = await client.post(
        "/api/auth/login", json={"email": "ana@example.com", "password": PASSWORD + "x"}
    )
    assert wrong.status_code == 401

    text = output.getvalue()
    for secret in (PASSWORD, token, key, CLIENT_IP, "127.0.0.1"):
        assert secret not in text
    assert line_of(output, listed)["route"] == "/api/links"
    assert line_of(output, yourls)["route"] == "/yourls-api.php"
    assert line_of(output, wrong) | {"duration_ms": 0} == {
        "time": line_of(output, wrong)["time"],
        "level": "INFO",
        "logger": "encurta.request",
        "message": line_of(output, wrong)["message"],
        "request_id": wrong.headers["x-request-id"],
        "method": "POST",
        "route": "/api/auth/login",
        "status": 401,
        "duration_ms": 0,
    }


async def test_one_line_per_request_but_none_for_the_redirect(
    client: httpx.AsyncClient, output: io.StringIO
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana)
    code = link["code"]
    output.truncate(0)
    output.seek(0)

    redirect = await client.get(f"/{code}")
    assert redirect.status_code in (301, 302, 307, 308)
    assert "x-request-id" not in redirect.headers
    details = await client.get(f"/api/links/{code}", headers=ana.headers)
    missing = await client.get("/api/nothing/here")

    assert [(line["method"], line.get("route"), line["status"]) for line in requests(output)] == [
        ("GET", "/api/links/{code}", details.status_code),
        ("GET", None, 404),
    ]
    assert line_of(output, details)["account_id"] == str(ana.id)
    assert line_of(output, missing)["path"] == "/api/nothing/here"
    assert "account_id" not in line_of(output, missing)
    assert line_of(output, details)["message"].startswith(f"GET /api/links/{{code}} {200} ")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("proxy-7f3a.1_b", True),
        ("x" * 65, False),
        ("a b", False),
        ("<script>", False),
    ],
)
async def test_a_callers_request_id_is_kept_only_when_short_and_plain(
    client: httpx.AsyncClient, output: io.StringIO, sent: str, kept: bool
) -> None:
    response = await client.get("/api/links", headers={"X-Request-Id": sent})
    answered = response.headers["x-request-id"]
    assert (answered == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", answered)
    assert line_of(output, response)["request_id"] == answered


async def test_a_request_nobody_was_answered_is_not_an_error(output: io.StringIO) -> None:
    async def leaves(scope: Scope, receive: Receive, send: Send) -> None:
        return None  # as an app does when the client disconnected before the answer

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    async def unused(message: Message) -> None:
        raise AssertionError(message)

    scope = {"type": "http", "method": "GET", "path": "/api/live", "headers": []}
    await RequestLog(leaves)(scope, nothing, unused)

    [line] = requests(output)
    assert (line["level"], line["status"], line["path"]) == ("INFO", None, "/api/live")
    assert line["message"].startswith("GET /api/live - ")


@pytest.fixture
async def failing_client(
    database_urls: dict[str, str], settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, with one more route that fails as a bug would."""
    await truncate_all(database_urls)
    app = create_app(settings, database_urls)

    async def boom(request: Request) -> Response:
        raise RuntimeError(f"a bug, with Bearer secret-token-123 from {CLIENT_IP}")

    app.router.routes.insert(0, Route("/api/boom", boom, methods=["POST"]))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(CLIENT_IP, 1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client,
    ):
        yield client


async def test_a_500_carries_the_request_id_which_its_logged_traceback_has(
    failing_client: httpx.AsyncClient, output: io.StringIO
) -> None:
    response = await failing_client.post("/api/boom")

    assert response.status_code == 500
    rid = response.headers["x-request-id"]
    assert rid in response.json()["detail"]
    logged = [line for line in records(output) if line.get("request_id") == rid]
    assert [(line["logger"], line["level"]) for line in logged] == [
        ("encurta.request", "ERROR"),
        ("app.kernel.problems", "ERROR"),
    ]
    assert logged[0]["status"] == 500 and logged[0]["route"] == "/api/boom"
    assert "RuntimeError: a bug" in logged[1]["traceback"]
    assert "secret-token-123" not in output.getvalue() and CLIENT_IP not in output.getvalue()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = traversable_tmp("encurta-test-logs-")
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_encurta_serve_logs_json_lines_to_stderr(data_dir: Path) -> None:
    server = Server(data_dir, ENCURTA_LOG_FORMAT="json")
    try:
        server.wait_ready()
        registered = httpx.post(
            f"{server.url}/api/auth/register",
            json={"email": "ana@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201
    finally:
        output = server.interrupt()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    [line] = [
        line
        for line in lines
        if line.get("logger") == "encurta.request" and line.get("route") == "/api/auth/register"
    ]
    assert line["status"] == 201 and line["request_id"] == registered.headers["x-request-id"]
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    assert PASSWORD not in output


def test_uvicorns_access_line_keeps_no_client_address(data_dir: Path) -> None:
    server = Server(data_dir, ENCURTA_LOG_FORMAT="json", ENCURTA_ACCESS_LOG="true")
    try:
        server.wait_ready()
        key = "enc_not-a-real-key-but-shaped-like-one"
        answered = httpx.get(f"{server.url}/yourls-api.php", params={"signature": key})
        assert answered.status_code in (401, 403)
    finally:
        output = server.interrupt()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    [yourls] = [message for message in access if "yourls-api.php" in message]
    assert yourls.startswith("[ip]:") and "signature=[redacted]" in yourls
    assert not [message for message in access if "127.0.0.1" in message]
    assert key not in output


async def test_probes_are_logged_at_debug_unless_refused(
    app_client: AppFactory, output: io.StringIO
) -> None:
    """Health checks and scrapes every few seconds would be most of the log at INFO; a
    refused scrape (Prometheus with a wrong token) is worth a line."""
    metrics = MetricsSettings(token=SecretStr("scrape-token"))
    async with app_client(metrics=metrics) as client:
        healthy = await client.get("/healthz")
        ready = await client.get("/readyz")
        scraped = await client.get("/metrics", headers=bearer("scrape-token"))
        assert [r.status_code for r in (healthy, ready, scraped)] == [200, 200, 200]
        assert requests(output) == []
        refused = await client.get("/metrics", headers=bearer("not-the-token"))
    assert line_of(output, refused)["status"] == 401
    assert line_of(output, refused)["level"] == "INFO"


async def test_a_decoded_newline_in_a_path_cannot_forge_a_console_line() -> None:
    async def missing(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def unused() -> Message:
        raise AssertionError

    async def sent(message: Message) -> None:
        return None

    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure("console", "info", stream, force=True)
    try:
        forged = "/x\n2026-12-07 03:00:00,000 INFO app.auth: admin logged in\r\x1b[2J"
        scope = {"type": "http", "method": "GET", "path": forged, "headers": []}
        await RequestLog(missing)(scope, unused, sent)
    finally:
        root.removeHandler(handler)  # type: ignore[arg-type]
        root.setLevel(level)

    [line] = stream.getvalue().splitlines()
    assert "/x%0A2026-12-07 03:00:00,000 INFO app.auth: admin logged in%0D%1B[2J 404" in line
