"""Server-rendered pages: Jinja2 templates over a shared layout, and their static assets."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.kernel.session import SESSION_COOKIE
from app.kernel.tokens import Principal

_HERE = Path(__file__).parent
STATIC = _HERE / "static"
TEMPLATES = _HERE / "templates"

# No inline script or style anywhere, no other origin: what a page can load is its own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # A page shows one person's data: no shared cache keeps it.
    "Cache-Control": "no-store",
}
_IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def asset_url(path: str) -> str:
    """`/static/<path>?v=<digest>`: a changed file is a new URL, so caches may keep each
    URL forever."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


def wants_html(request: Request) -> bool:
    """A browser navigating (not an API client): answer with a page, not problem+json."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = _IMMUTABLE if versioned else "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_routes() -> list[BaseRoute]:
    return [Mount("/static", app=_Assets(directory=STATIC), name="static")]


class Pages:
    """Renders a module's templates (its own folder first, then the kernel's layout)."""

    def __init__(self, templates: Path | None = None) -> None:
        folders = [templates, TEMPLATES] if templates else [TEMPLATES]
        self._env = Environment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        self._env.globals["asset"] = asset_url

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        viewer: Principal | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """`viewer`: who the page is for, as its Gate found them; the navigation follows.
        Without one (a sign-in form, an error page) it guesses from the session cookie."""
        signed_in = viewer is not None or SESSION_COOKIE in request.cookies
        admin = viewer is not None and viewer.is_admin
        navigation = {"signed_in": signed_in, "admin": admin, "request": request}
        body = self.html(name, navigation | dict(context or {}))
        return HTMLResponse(body, status_code, headers={**PAGE_HEADERS, **(headers or {})})

    def html(self, name: str, context: Mapping[str, Any]) -> str:
        return self._env.get_template(name).render({"signed_in": False, "admin": False, **context})


@functools.cache
def _kernel_pages() -> Pages:
    return Pages()


def error_page(
    status: int, title: str, detail: str, *, request: Request | None = None, signed_in: bool = False
) -> str:
    """The error page in the shared layout (404, 410 ...), for any module or the front door."""
    if request is not None:
        signed_in = SESSION_COOKIE in request.cookies
    context = {"status": status, "title": title, "detail": detail, "signed_in": signed_in}
    return _kernel_pages().html("error.html", context)


def scope_wants_html(scope: Scope) -> bool:
    """`wants_html` for a plain ASGI app (the front door's), from the raw headers."""
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return b"text/html" in value
    return False


def scope_signed_in(scope: Scope) -> bool:
    """The navigation's guess: a session cookie is there."""
    marker = SESSION_COOKIE.encode() + b"="
    return any(name == b"cookie" and marker in value for name, value in scope.get("headers", ()))
