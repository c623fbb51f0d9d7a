"""auth's account page: who you are, change your password, delete your account.

The same `AuthService` calls as `POST /api/auth/password` and `DELETE /api/auth/me`. The
refresh cookie is sent only to `/auth/`, so a password change here keeps no session: every
session of the account ends, and this browser gets the new pair as fresh cookies, as a
sign-in sets them. A change is a POST with the session cookie, which the Gate lets through
only from this site's pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.http import client_ip, is_https
from app.kernel.session import clear_session
from app.kernel.settings import IPNetwork
from app.kernel.tokens import Principal
from app.kernel.web import Pages, read_form, visitor
from app.modules.auth.pages import session_redirect
from app.modules.auth.passwords import MAX_LENGTH, HashInFlight, HashQueueFull
from app.modules.auth.schemas import ChangePasswordRequest, User
from app.modules.auth.service import AccountDisabled, AuthService, InvalidCredentials
from app.modules.auth.throttle import Throttled
from app.modules.auth.users import LastAdmin

PATH = "/account"
_ENTER_CURRENT = "Enter your current password."
_BUSY = "The server is busy checking passwords. Try again in a second."
_LAST_ADMIN = (
    "You are the last active admin of this instance: make another account an admin "
    "(Admin → Users) before deleting yours."
)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A pydantic refusal as one message per field, in words a person reads."""
    return {
        str(item["loc"][0]): str(item["msg"]).removeprefix("Value error, ")
        for item in exc.errors(include_url=False, include_input=False)
    }


def build_account_page_routes(
    service: AuthService,
    gate: Gate,
    refresh_seconds: int,
    trusted_proxies: Sequence[IPNetwork] = (),
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    def ip(request: Request) -> str:
        return client_ip(request, trusted_proxies) or "unknown"

    def signed_out(request: Request, to: str) -> Response:
        response = RedirectResponse(to, status_code=303)
        clear_session(response, secure=is_https(request, trusted_proxies))
        return response

    async def owner(request: Request) -> tuple[Principal, User] | Response:
        principal = await visitor(gate, request)
        if isinstance(principal, Response):
            return principal
        principal.require_session()
        user = await service.user(principal.user_id)
        if user is None or not user.is_active:
            return signed_out(request, "/login")
        return principal, user

    def account_page(
        request: Request,
        principal: Principal,
        user: User,
        status_code: int = 200,
        errors: Mapping[str, str] | None = None,
        error: str | None = None,
    ) -> Response:
        context = {
            "user": user,
            "errors": errors or {},
            "error": error,
            "changed": request.query_params.get("changed") is not None,
        }
        return pages.render(
            request, "account.html", context, viewer=principal, status_code=status_code
        )

    async def show(request: Request) -> Response:
        found = await owner(request)
        if isinstance(found, Response):
            return found
        return account_page(request, *found)

    async def change_password(request: Request) -> Response:
        found = await owner(request)
        if isinstance(found, Response):
            return found
        principal, user = found
        form = await read_form(request, 20)
        current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))

        def again(status: int, errors: Mapping[str, str], error: str | None = None) -> Response:
            return account_page(request, principal, user, status, errors, error)

        try:
            body = ChangePasswordRequest.model_validate(
                {"current_password": current, "new_password": new}
            )
        except ValidationError as exc:
            errors = field_errors(exc)
            if "current_password" in errors:
                errors["current_password"] = _ENTER_CURRENT
            return again(422, errors)
        if body.new_password == body.current_password:
            return again(422, {"new_password": "It is the current password: choose another."})
        try:
            pair = await service.change_password(
                principal.user_id, body.current_password, body.new_password, ip(request)
            )
        except Throttled as exc:
            return again(429, {}, f"Too many failed attempts. Try again in {exc.retry_after} s.")
        except (HashInFlight, HashQueueFull):
            return again(503, {}, _BUSY)
        except AccountDisabled:
            return signed_out(request, "/login")
        except InvalidCredentials:
            return again(403, {"current_password": "The current password is wrong."})
        # Every session ended, this one too: the browser continues with the new pair.
        secure = is_https(request, trusted_proxies)
        return session_redirect(
            f"{PATH}?changed", pair, secure=secure, refresh_seconds=refresh_seconds
        )

    def delete_page(
        request: Request, principal: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        context = {"error": None, "errors": {}, **values}
        return pages.render(
            request, "delete_account.html", context, viewer=principal, status_code=status_code
        )

    async def ask_delete(request: Request) -> Response:
        found = await owner(request)
        if isinstance(found, Response):
            return found
        return delete_page(request, found[0])

    async def delete(request: Request) -> Response:
        found = await owner(request)
        if isinstance(found, Response):
            return found
        principal, _ = found
        form = await read_form(request, 20)
        password = str(form.get("password", ""))
        if not password or len(password) > MAX_LENGTH:
            errors = {"password": "Enter your password."}
            return delete_page(request, principal, 422, errors=errors)
        try:
            await service.delete_account(principal.user_id, password, ip(request))
        except Throttled as exc:
            error = f"Too many failed attempts. Try again in {exc.retry_after} seconds."
            return delete_page(request, principal, 429, error=error)
        except (HashInFlight, HashQueueFull):
            return delete_page(request, principal, 503, error=_BUSY)
        except InvalidCredentials:
            errors = {"password": "The password is wrong."}
            return delete_page(request, principal, 403, errors=errors)
        except LastAdmin:
            return delete_page(request, principal, 409, error=_LAST_ADMIN)
        return signed_out(request, "/login?deleted")

    return [
        Route(PATH, show, methods=["GET"]),
        Route(PATH + "/password", change_password, methods=["POST"]),
        Route(PATH + "/delete", ask_delete, methods=["GET"]),
        Route(PATH + "/delete", delete, methods=["POST"]),
    ]
