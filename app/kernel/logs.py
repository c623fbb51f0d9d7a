"""The process's log: one handler on the root logger, `console` (lines for people) or `json`
(one object a line, for a collector), behind a filter that keeps secrets and addresses out.

The filter is the last word, not the first: code should not log a secret at all, but a
header dump, an exception's text or uvicorn's access line (the client's address is its
first field) must not leak one either. It works on the formatted message, every string
field a record carries, and tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from typing import IO, Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["console", "json"]

# The id of the request being answered, for every line logged while answering it.
request_id: ContextVar[str | None] = ContextVar("encurta_request_id", default=None)

# Where the request id and the authenticated account are kept on an ASGI scope: the scope
# outlives the context variable (Starlette's 500 handler runs after the middleware).
REQUEST_ID_KEY = "encurta.request_id"
ACCOUNT_KEY = "encurta.account"


def note_account(scope: MutableMapping[str, Any], account_id: object) -> None:
    """Called by the gate: the account a request is answered for, for its log line."""
    scope[ACCOUNT_KEY] = str(account_id)


REDACTED = "[redacted]"
_IP = "[ip]"

# An address in a URL (`scheme://`, `user@`) is a server's (ours, a database's), not a
# client's: kept.
_IN_URL = r"(?<!://)(?<!@)(?<!://\[)"
_IPV4 = _IN_URL + r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
_H = r"[0-9A-Fa-f]{1,4}"
# Full form, or compressed (a `::`); times such as 12:34:56 have neither.
_GROUPS = rf"(?:{_H}(?::{_H})*)?"
_IPV6 = _IN_URL + rf"(?<![\w:])(?:(?:{_H}:){{7}}{_H}|{_GROUPS}::{_GROUPS})(?![\w:])"
_SECRET_WORDS = r"(?:authorization|cookie|api[-_]?key|password|passwd|secret|token|signature)"  # noqa: S105 - names to find, not a password
_SECRET_FIELD = re.compile(rf"(?i){_SECRET_WORDS}")
_DOTTED = re.compile(r"\d\.\d{1,3}\.\d")
# (a cheap test that the pattern may match, the pattern, its replacement): most lines pass
# every test, and cost a few substring searches instead of five regular expressions.
_PATTERNS: list[tuple[Callable[[str], object], re.Pattern[str], str]] = [
    # Authorization: Bearer x, Basic x
    (
        re.compile(r"(?i)bearer|basic").search,
        re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+"),
        r"\1 " + REDACTED,
    ),
    # password=x, "token": "x", X-Api-Key: x, ?signature=x (a query string in a path)
    (
        _SECRET_FIELD.search,
        re.compile(
            rf"(?i)(?<![\w-])([\w-]*{_SECRET_WORDS}[\w-]*[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[redacted\])[^\s\"'&,;}]+"
        ),
        r"\1" + REDACTED,
    ),
    (lambda text: "enc_" in text, re.compile(r"\benc_[A-Za-z0-9_-]+"), REDACTED),  # API keys
    # A password hash with no name beside it: a failed INSERT's parameters are a tuple.
    (lambda text: "$argon2" in text, re.compile(r"\$argon2(?:id|i|d)\$[^\s\"'()\]]+"), REDACTED),
    (_DOTTED.search, re.compile(_IPV4), _IP),
    (lambda text: "::" in text or text.count(":") >= 7, re.compile(_IPV6), _IP),
]
# Lines that state the server's own listening address, not a client's: kept as they are.
_OWN_ADDRESS = ("Uvicorn running on", "embedded PostgreSQL on")
# Standard LogRecord attributes, never treated as extra fields.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def scrub(text: str) -> str:
    """`text` without credentials or IP addresses."""
    for may_match, pattern, replacement in _PATTERNS:
        if may_match(text):
            text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Scrubs each record in place before any handler formats it, and adds the request id
    of the request being answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(_OWN_ADDRESS):
            message = record.getMessage()
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        fields: MutableMapping[str, Any] = record.__dict__
        fields.pop("color_message", None)  # uvicorn's copy of the message, with colours
        for name in [name for name in fields if name not in _STANDARD]:
            value = fields[name]
            if _SECRET_FIELD.search(name) and value is not None:
                fields[name] = REDACTED
            elif isinstance(value, str):
                fields[name] = scrub(value)
        if getattr(record, "request_id", None) is None:
            current = request_id.get()
            if current is not None:
                record.request_id = current
        return True


class ConsoleFormatter(logging.Formatter):
    """Today's lines (time, level, logger, message), then the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid is None:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [request {rid}]{newline}{rest}"

    def formatException(self, ei: Any) -> str:
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub(super().formatStack(stack_info))


class JsonLines(JsonFormatter):
    """`{"time", "level", "logger", "message", "request_id"?, ...extra, "traceback"?}`."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
            timestamp="time",
            defaults={"time": None},  # first, then filled in by `timestamp`
        )

    def formatException(self, ei: Any) -> str:
        return scrub(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return scrub(str(super().formatStack(stack_info)))


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` adds: found again and replaced by the next call."""


def configure(
    log_format: LogFormat, level: str, stream: IO[str] | None = None, *, force: bool = False
) -> logging.Handler | None:
    """Sends every log record to `stream` (stderr) in `log_format` at `level`.

    Like `logging.basicConfig`, it leaves a root logger that has someone else's handlers
    alone (a test runner capturing the log) unless `force`; a handler of an earlier call is
    replaced. Returns the handler added, if any."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, _Ours)]
    if len(ours) != len(root.handlers) and not force:
        return None
    for handler in ours:
        root.removeHandler(handler)
    handler = _Ours(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else ConsoleFormatter())
    handler.addFilter(Redact())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
