"""The browser's session: two HttpOnly cookies, and the origin check that guards them.

`encurta_session` holds an access token (path `/`, so every module's pages and API get it,
and every module's Gate verifies it as it verifies a Bearer token); `encurta_refresh` holds
the refresh token, sent only to auth's `/auth/` paths, where it is rotated or revoked. Both
are SameSite=Lax, and Secure when the client came over https (directly, or through a
trusted proxy's `X-Forwarded-Proto`).

A request that acts on a cookie's authority (any method but GET, HEAD, OPTIONS) must come
from this origin: its `Origin` (or, failing that, `Referer`) names the host it was sent to.
Browsers send `Origin` on every cross-origin POST, and a page of another site cannot set it,
so a form on that site cannot act as the signed-in user (CSRF), whatever SameSite a browser
applies.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "encurta_session"
REFRESH_COOKIE = "encurta_refresh"
REFRESH_PATH = "/auth/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def has_credentials(request: Request) -> bool:
    """The request names a caller: a header (API) or the session cookie (browser)."""
    headers = request.headers
    return "authorization" in headers or "x-api-key" in headers or SESSION_COOKIE in request.cookies


def same_origin(request: Request) -> bool:
    """Sent by a page of this origin: `Origin` (else `Referer`) names the Host it reached."""
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    host = request.headers.get("host", "").lower()
    return bool(host) and urlsplit(source).netloc.lower() == host


def set_session(
    response: Response,
    *,
    secure: bool,
    access_token: str,
    access_seconds: int,
    refresh_token: str,
    refresh_seconds: int,
) -> None:
    """`secure`: the client came over https (app.kernel.http.is_https): the cookies are
    then never sent over plain http."""
    response.set_cookie(
        SESSION_COOKIE,
        access_token,
        max_age=access_seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=refresh_seconds,
        path=REFRESH_PATH,
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, httponly=True, samesite="lax"
    )
