"""What `encurta serve` bounds per connection: head and body size, slow clients, how many
at once. The protocol that enforces it is in `http_protocol.py`, and the one that adds the
express lane in `express_protocol.py` (imported only to serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from app.kernel.express import ExpressLane
    from app.kernel.metrics import RequestMeter


class ServerSettings(BaseModel):
    """Limits of the HTTP server, `ENCURTA_SERVER__*`. Defaults follow nginx and h11."""

    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Request line and headers together; more is 431 and the connection closed.",
    )
    max_headers: int = Field(
        default=100, ge=1, le=10_000, description="Header lines per request; more is 431."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Any request body; more is 413 and the connection closed (JSON routes "
        "stop at 64 KiB).",
    )
    upload_max_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024,
        description="A body on a route that takes uploads (POST /api/imports) instead of "
        "max_body_bytes; the route streams it to disk.",
    )
    upload_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="From the end of an upload's headers to the end of its body.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="From a connection's opening, or a later request's first byte, to the end "
        "of its headers; then 408 (or a plain close if nothing was sent).",
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="From the end of the headers to the end of the body."
    )
    keep_alive_seconds: float = Field(
        default=5.0, gt=0, description="An idle connection between requests is closed after."
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections and requests in progress; beyond, requests get 503.",
    )
    express: bool = Field(
        default=True,
        description="Answer cached redirects in the HTTP protocol, below ASGI "
        "(app/kernel/express.py); false sends every request through ASGI.",
    )


def uvicorn_options(
    limits: ServerSettings, express: ExpressLane | None = None, meter: RequestMeter | None = None
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` that enforce `limits`, and run
    the app's `express` lane (app.kernel.express) unless `limits.express` is off, counting
    its answers in `meter` (app.kernel.metrics) if given."""
    from app.kernel.express_protocol import ExpressHttpToolsProtocol

    return {
        "http": ExpressHttpToolsProtocol.serving(limits, express, meter),
        "ws": "none",  # no route speaks WebSocket: do not offer a second parser to attack
        "limit_concurrency": limits.max_connections,
        "timeout_keep_alive": limits.keep_alive_seconds,
    }
