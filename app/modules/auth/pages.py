"""auth's pages: sign in, sign up, sign out, and the session's refresh.

The session lives in two HttpOnly cookies (app.kernel.session): the access token, which
every module's Gate reads, and the refresh token, sent only to `/auth/`. A page of another
module that finds no live access token sends the browser to `/auth/refresh?next=...`, which
rotates the refresh token into a new pair, or sends it on to `/login`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.http import client_ip, is_https
from app.kernel.problems import Problem
from app.kernel.session import REFRESH_COOKIE, clear_session, same_origin, set_session
from app.kernel.settings import IPNetwork
from app.kernel.web import Pages, read_form
from app.modules.auth.invites import InvalidInvite
from app.modules.auth.passwords import MAX_LENGTH, HashInFlight, HashQueueFull
from app.modules.auth.schemas import RegisterRequest, TokenPair
from app.modules.auth.service import (
    AccountDisabled,
    AuthService,
    InvalidCredentials,
    InvalidRefreshToken,
    InviteRequired,
    RegistrationClosed,
)
from app.modules.auth.throttle import Throttled
from app.modules.auth.users import EmailTaken

HOME = "/links"
# Tabs of one browser that renew its session at once all send the same refresh cookie:
# within this time of its rotation, a second use gets a pair of the same session rather
# than reading as a thief's reuse (which would end the session for every tab).
RENEWAL_GRACE_SECONDS = 10.0
_BUSY = "The server is busy checking passwords. Try again in a second."


def safe_next(value: object) -> str:
    """Where to go after signing in: a path of this site only (never `//evil.example`)."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith(("//", "/\\")):
        return HOME
    return text


def session_redirect(to: str, pair: TokenPair, *, secure: bool, refresh_seconds: int) -> Response:
    """A 303 to `to` that gives the browser `pair` as its session cookies."""
    response = RedirectResponse(to, status_code=303)
    set_session(
        response,
        secure=secure,
        access_token=pair.access_token,
        access_seconds=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_seconds=refresh_seconds,
    )
    return response


def cross_origin() -> Problem:
    return Problem(403, "This form must be sent from this site's own pages.", slug="cross-origin")


async def _form(request: Request) -> FormData:
    if not same_origin(request):
        raise cross_origin()
    return await read_form(request, 20)


def build_page_routes(
    service: AuthService,
    refresh_seconds: int,
    trusted_proxies: Sequence[IPNetwork] = (),
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    def ip(request: Request) -> str:
        return client_ip(request, trusted_proxies) or "unknown"

    def signed_in(request: Request, pair: TokenPair, to: str) -> Response:
        secure = is_https(request, trusted_proxies)
        return session_redirect(to, pair, secure=secure, refresh_seconds=refresh_seconds)

    def page(
        name: str, request: Request, status_code: int = 200, **values: Any
    ) -> Callable[[], Response]:
        context: Mapping[str, Any] = {
            "next": HOME,
            "email": "",
            "error": None,
            "errors": {},
            "invite": service.registration == "invite",
            "invite_token": "",
            "deleted": False,
            **values,
        }
        return lambda: pages.render(request, name, context, status_code=status_code)

    async def login_page(request: Request) -> Response:
        return page(
            "login.html",
            request,
            next=safe_next(request.query_params.get("next")),
            deleted=request.query_params.get("deleted") is not None,
        )()

    async def login(request: Request) -> Response:
        form = await _form(request)
        email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
        to = safe_next(form.get("next"))

        def again(status: int, error: str) -> Response:
            return page("login.html", request, status, next=to, email=email, error=error)()

        if not email or not password or len(email) > 320 or len(password) > MAX_LENGTH:
            return again(422, "Enter your email and password.")
        try:
            pair = await service.login(email, password, ip(request))
        except Throttled as exc:
            return again(429, f"Too many failed attempts. Try again in {exc.retry_after} seconds.")
        except (HashInFlight, HashQueueFull):
            return again(503, _BUSY)
        except InvalidCredentials:
            return again(401, "The email or password is wrong.")
        except AccountDisabled:
            return again(403, "This account is disabled.")
        return signed_in(request, pair, to)

    async def signup_page(request: Request) -> Response:
        # An invite's link (/admin/invites) carries its token: the field comes filled in.
        token = request.query_params.get("invite", "")[:128]
        return page("signup.html", request, invite_token=token)()

    async def signup(request: Request) -> Response:
        form = await _form(request)
        email = str(form.get("email", "")).strip()
        fields: dict[str, str | None] = {"email": email, "password": str(form.get("password", ""))}
        if service.registration == "invite":
            fields["invite"] = str(form.get("invite", "")).strip() or None

        def again(
            status: int, error: str | None, errors: Mapping[str, str] | None = None
        ) -> Response:
            values = {
                "email": email,
                "error": error,
                "errors": errors or {},
                "invite_token": fields.get("invite") or "",
            }
            return page("signup.html", request, status, **values)()

        try:
            body = RegisterRequest.model_validate(fields)
        except ValidationError as exc:
            errors = {
                str(item["loc"][0]): str(item["msg"]).removeprefix("Value error, ")
                for item in exc.errors(include_url=False, include_input=False)
            }
            return again(422, "Check the fields marked below.", errors)
        try:
            await service.register(
                str(body.email), body.password, None, None, ip(request), invite=body.invite
            )
            pair = await service.login(str(body.email), body.password, ip(request))
        except InviteRequired:
            return again(422, None, {"invite": "This instance registers by invitation."})
        except InvalidInvite as exc:
            return again(403, None, {"invite": exc.detail})
        except RegistrationClosed:
            return again(403, "Registration is closed on this instance: an admin creates accounts.")
        except EmailTaken:
            return again(409, None, {"email": "An account with this email already exists."})
        except Throttled as exc:
            return again(429, f"Too many attempts. Try again in {exc.retry_after} seconds.")
        except (HashInFlight, HashQueueFull):
            return again(503, _BUSY)
        except (InvalidCredentials, AccountDisabled):
            return RedirectResponse("/login", status_code=303)
        return signed_in(request, pair, HOME)

    async def logout(request: Request) -> Response:
        await _form(request)
        token = request.cookies.get(REFRESH_COOKIE)
        if token:
            await service.logout(token)
        response = RedirectResponse("/login", status_code=303)
        clear_session(response, secure=is_https(request, trusted_proxies))
        return response

    async def refresh(request: Request) -> Response:
        to = safe_next(request.query_params.get("next"))
        token = request.cookies.get(REFRESH_COOKIE)
        if token:
            try:
                renewed = await service.refresh(token, grace_seconds=RENEWAL_GRACE_SECONDS)
                return signed_in(request, renewed, to)
            except InvalidRefreshToken:
                pass
        response = RedirectResponse(f"/login?next={quote(to, safe='/')}", status_code=303)
        clear_session(response, secure=is_https(request, trusted_proxies))
        return response

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/signup", signup_page, methods=["GET"]),
        Route("/signup", signup, methods=["POST"]),
        Route("/auth/logout", logout, methods=["POST"]),
        Route("/auth/refresh", refresh, methods=["GET"]),
    ]
