"""Reading request bodies safely: content type, size limit, JSON, then the model."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import MutableMapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from app.kernel.problems import Problem, invalid_fields, validation_problem
from app.kernel.settings import IPNetwork

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

# The scope key of an answer that never ends by itself (a stream of events).
ENDLESS = "encurta.endless"


def mark_endless(scope: MutableMapping[str, Any]) -> None:
    """Tell the server this answer never ends by itself: a graceful shutdown closes its
    connection, as if the client had left, instead of waiting for it (app.kernel
    .express_protocol)."""
    scope[ENDLESS] = True


# Routes whose body is an upload, streamed to disk by the route: the server gives them its
# upload limits (`upload_max_bytes`, `upload_timeout_seconds`) instead of those on any body.
# Named here, not marked by the route, because the server must know before the app runs:
# the first reads of a body arrive while the route is still authenticating.
UPLOAD_PATHS = frozenset({"/api/imports"})


Model = TypeVar("Model", bound=BaseModel)


async def read_urlencoded(
    request: Request, max_bytes: int, max_fields: int
) -> list[tuple[str, str]]:
    """An urlencoded form's fields, read within `max_bytes` while streaming (Starlette's
    own form parser has no size limit), or a 4xx problem."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise Problem(413, f"The form is larger than {max_bytes} bytes.")
    except ClientDisconnect:
        raise Problem(400, "The client disconnected before the form was complete.") from None
    try:
        text = bytes(body).decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "The form is not valid UTF-8 urlencoded text.") from None


async def read_json(request: Request, model: type[Model]) -> Model:
    """Parse the body into `model`, or raise a 4xx problem that says what is wrong.

    The limit is enforced while streaming, so a lying or missing Content-Length cannot
    make us buffer more than 64 KiB.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            415,
            "Send the body as JSON with 'Content-Type: application/json'.",
            slug="unsupported-media-type",
        )
    declared = request.headers.get("content-length")
    if declared is not None and _declared_length(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks = bytearray()
    try:
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > MAX_BODY_BYTES:
                raise _too_large()
    except ClientDisconnect:
        # Nobody is left to answer: no error, no traceback, and no 500 attempt.
        log.debug("the client left before sending all of the body of %s", request.url.path)
        raise Problem(
            400, "The client disconnected before the body was complete.", slug="incomplete-body"
        ) from None
    data = _parse(bytes(chunks))
    if not isinstance(data, dict):
        raise invalid_fields([{"field": "body", "message": "Expected a JSON object."}])
    unstorable = unstorable_strings(data)
    if unstorable:
        raise invalid_fields(
            [
                {"field": field, "message": "Text must not contain NUL or lone surrogates."}
                for field in unstorable
            ]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def _declared_length(declared: str) -> int:
    """Content-Length as a number: past the limit for anything that is not one.

    Leading zeros are valid HTTP (and pass the HTTP parser), so the value may have any
    number of digits: `int()` refuses more than 4300, and `isdigit()` accepts non-ASCII
    digits such as '²' that `int()` refuses too.
    """
    digits = declared.strip().lstrip("0") or "0"
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return MAX_BODY_BYTES + 1
    return int(digits)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse(body: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting and number size."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "The body is not valid UTF-8.", slug="malformed-json") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise Problem(400, "The body nests too deeply.", slug="malformed-json") from exc
    except json.JSONDecodeError as exc:
        raise Problem(
            400,
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            slug="malformed-json",
        ) from exc
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit, NaN
        raise Problem(400, f"The body is not valid JSON: {exc}.", slug="malformed-json") from exc


def unstorable_strings(data: Any) -> list[str]:
    """Paths of strings PostgreSQL text cannot hold (NUL) or UTF-8 cannot encode: also for
    JSON read other than by `read_json` (an import's rows)."""
    bad: list[str] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if not _storable(str(key)):
                    bad.append(child)
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}", item) for index, item in enumerate(value))
        elif isinstance(value, str) and not _storable(value):
            bad.append(path or "body")
    return sorted(bad)


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_large() -> Problem:
    return Problem(
        413, f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.", slug="body-too-large"
    )


def json_response(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def client_ip(request: Request, trusted_proxies: Sequence[IPNetwork] = ()) -> str | None:
    """The socket peer, or, when the peer is a trusted proxy, the last address in
    X-Forwarded-For that is not itself a trusted proxy (the right-most untrusted hop)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies)


def is_https(request: Request, trusted_proxies: Sequence[IPNetwork] = ()) -> bool:
    """The client reached us over https: directly, or through a trusted proxy that says so
    in `X-Forwarded-Proto` (a TLS terminator in front). Anyone else's word is not taken."""
    if request.url.scheme == "https":
        return True
    peer = _plain(request.client.host) if request.client else None
    if peer is None or not trusted_proxies or not _trusted(peer, tuple(trusted_proxies)):
        return False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https"


def client_address(
    peer_host: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[IPNetwork]
) -> str | None:
    """`client_ip` from the socket peer's address and the X-Forwarded-For lines, for code
    that reads the ASGI scope itself (the redirect)."""
    peer = _plain(peer_host) if peer_host else None
    if peer is None or not trusted_proxies or not _trusted(peer, tuple(trusted_proxies)):
        return peer
    # Every X-Forwarded-For line: a proxy may add its own line rather than append.
    forwarded = ",".join(forwarded_for)
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        address = _plain(hop)
        if address is None:
            return peer  # not an address: nothing to the left of it can be believed
        if not _trusted(address, tuple(trusted_proxies)):
            return address
    return peer


def client_key(address: str | None) -> str:
    """A client for per-client limits: an IPv4 address as it is, an IPv6 one by its /64
    (one subscriber's block)."""
    if address is None:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@lru_cache(maxsize=65_536)
def _plain(value: str) -> str | None:
    """The address in canonical form; an IPv4 client seen through an IPv6 socket
    (::ffff:203.0.113.9) as the IPv4 address it is. None when it is no address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@lru_cache(maxsize=4096)
def _trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def read_query(request: Request, model: type[Model]) -> Model:
    """Parse the query string into `model`, or raise a 422 naming each bad parameter.
    An empty value (`?from=`) means the default, as if the parameter were absent."""
    params = {key: value for key, value in request.query_params.items() if value != ""}
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_problem(exc, where="query") from exc
