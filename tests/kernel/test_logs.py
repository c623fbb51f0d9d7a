"""The log's formats and its filter, on records as the app and uvicorn make them."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from app.kernel.logs import ConsoleFormatter, Redact, configure, request_id, scrub

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJl"
KEY = "enc_k2Qv8Zt0XlYh3pN4a7Wc1Rb9_x"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, through the handler `configure` adds."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure("json", "info", stream, force=True)
    yield stream
    root.removeHandler(handler)  # type: ignore[arg-type]
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {TOKEN}",
        f"headers={{'authorization': 'Bearer {TOKEN}', 'x-api-key': '{KEY}'}}",
        f"GET /yourls-api.php?action=stats&signature={KEY}&format=json",
        f'{{"email": "ana@example.com", "password": "{TOKEN}"}}',
        f"refresh_token={TOKEN}",
        f"the key {KEY} was used",
    ],
)
def test_credentials_are_scrubbed(text: str) -> None:
    cleaned = scrub(text)
    assert TOKEN not in cleaned and KEY not in cleaned, cleaned
    assert "[redacted]" in cleaned


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("client 127.0.0.1:51234 said hello", "127.0.0.1"),
        ("from 203.0.113.7", "203.0.113.7"),
        ("from [2001:db8::1]:443", "2001:db8::1"),
        ("from ::1", "::1"),
        ("from 2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:0db8:0000:0000:0000:ff00:0042:8329"),
    ],
)
def test_addresses_are_scrubbed(text: str, address: str) -> None:
    cleaned = scrub(text)
    assert address not in cleaned and "[ip]" in cleaned, cleaned


@pytest.mark.parametrize(
    "text",
    [
        "at 12:34:56 uvicorn 0.54.0 migrated auth to 0003 (id 9f1c0a2b)",
        # a server's address in a URL (a database's, ours), not a client's
        "migrating auth (postgresql+asyncpg://encurta_auth:***@10.0.0.5:5432/encurta_auth)",
        "delivering to http://192.0.2.10/hook and http://[2001:db8::7]:8080/hook",
    ],
)
def test_times_versions_ids_and_urls_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_uvicorns_access_line_loses_the_client_and_the_signature(output: io.StringIO) -> None:
    # uvicorn.access's record, as uvicorn 0.54 makes it (with ENCURTA_ACCESS_LOG=true).
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:51234",
        "GET",
        f"/yourls-api.php?signature={KEY}&action=stats",
        "1.1",
        200,
    )
    [line] = lines(output)
    assert "127.0.0.1" not in json.dumps(line) and KEY not in json.dumps(line)
    assert line["message"] == (
        '[ip]:51234 - "GET /yourls-api.php?signature=[redacted]&action=stats HTTP/1.1" 200'
    )


def test_the_servers_own_address_is_kept(output: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        "http",
        "127.0.0.1",
        8000,
        extra={"color_message": "\x1b[1m127.0.0.1\x1b[0m"},
    )
    [line] = lines(output)
    assert line["message"] == "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"
    assert "color_message" not in line


def test_a_json_line_has_its_fields_and_the_request_id(output: io.StringIO) -> None:
    token = request_id.set("req-1")
    try:
        logging.getLogger("app.somewhere").warning(
            "made %s", "it", extra={"links": 3, "api_key": KEY, "note": "from 10.1.2.3"}
        )
    finally:
        request_id.reset(token)
    [line] = lines(output)
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["level"] == "WARNING" and line["logger"] == "app.somewhere"
    assert line["message"] == "made it" and line["request_id"] == "req-1"
    assert line["links"] == 3 and line["api_key"] == "[redacted]"
    assert line["note"] == "from [ip]"
    assert str(line["time"]).startswith("20")


def test_a_traceback_is_one_field_and_scrubbed(output: io.StringIO) -> None:
    try:
        raise ConnectionError(f"could not reach 10.9.8.7 with Bearer {TOKEN}")
    except ConnectionError:
        logging.getLogger("app.x").exception("it failed")
    [line] = lines(output)
    traceback = str(line["traceback"])
    assert "ConnectionError" in traceback and "Traceback" in traceback
    assert "10.9.8.7" not in traceback and TOKEN not in traceback


def test_console_lines_are_as_before_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact())
    handler.setFormatter(ConsoleFormatter())
    record = logging.makeLogRecord(
        {"name": "encurta", "levelname": "INFO", "levelno": 20, "msg": "hello from 1.2.3.4"}
    )
    token = request_id.set("abc")
    try:
        handler.handle(record)
    finally:
        request_id.reset(token)
    assert stream.getvalue().rstrip("\n").endswith(" INFO encurta: hello from [ip] [request abc]")


def test_configure_leaves_someone_elses_handlers_alone() -> None:
    # pytest's own capturing handler is on the root logger during a test.
    assert logging.getLogger().handlers
    assert configure("json", "info", sys.stderr) is None


def test_a_password_hash_in_a_failed_statements_parameters_is_scrubbed() -> None:
    hashed = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    text = f"[parameters: (UUID('9f1c0a2b'), 'ana@example.com', '{hashed}', None)]"
    cleaned = scrub(text)
    assert "c2FsdHNhbHQ" not in cleaned and "aGFzaGhhc2hoYXNo" not in cleaned, cleaned
    assert "'ana@example.com', '[redacted]', None)]" in cleaned
