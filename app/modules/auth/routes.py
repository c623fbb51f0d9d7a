"""The auth HTTP API: JSON in, problem+json out."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import client_ip, json_response, read_json
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.settings import IPNetwork
from app.kernel.tokens import unauthorized
from app.modules.auth.admin import last_admin
from app.modules.auth.invites import InvalidInvite
from app.modules.auth.passwords import HashInFlight, HashQueueFull
from app.modules.auth.schemas import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    Jwks,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    User,
)
from app.modules.auth.service import (
    AccountDisabled,
    AuthService,
    InvalidCredentials,
    InvalidRefreshToken,
    InviteRequired,
    RegistrationClosed,
)
from app.modules.auth.throttle import Throttled
from app.modules.auth.users import EmailTaken, LastAdmin

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _tokens(pair: TokenPair) -> JSONResponse:
    response = json_response(pair)
    response.headers.update(_NO_STORE)
    return response


def _throttled(exc: Throttled) -> Problem:
    return Problem(
        429,
        f"Too many failed attempts. Try again in {exc.retry_after} seconds.",
        slug="too-many-attempts",
        headers={"Retry-After": str(exc.retry_after)},
    )


def _too_many_registrations(exc: Throttled) -> Problem:
    return Problem(
        429,
        f"Too many registrations from this address. Try again in {exc.retry_after} seconds.",
        slug="too-many-registrations",
        headers={"Retry-After": str(exc.retry_after)},
    )


def hash_in_flight() -> Problem:
    return Problem(
        429,
        "A password check from this client is still in progress. Try again in a second.",
        slug="password-check-in-progress",
        headers={"Retry-After": "1"},
    )


def hash_queue_full() -> Problem:
    return Problem(
        503,
        "Too many password checks are waiting. Try again in a second.",
        slug="password-checks-busy",
        headers={"Retry-After": "1"},
    )


_FIRST_ACCOUNT = (
    "This instance has no account yet: make its first admin on the server with "
    "`encurta users create EMAIL --password-stdin`."
)


def registration_closed(empty: bool) -> Problem:
    return Problem(
        403,
        _FIRST_ACCOUNT
        if empty
        else "Registration is closed on this instance: an admin creates accounts.",
        slug="registration-closed",
    )


def invite_required(empty: bool) -> Problem:
    message = "This instance registers by invitation: send an admin's invite."
    return invalid_fields(
        [{"field": "invite", "message": f"{message} {_FIRST_ACCOUNT}" if empty else message}]
    )


def invalid_invite(detail: str) -> Problem:
    return Problem(
        403, detail, slug="invalid-invite", errors=[{"field": "invite", "message": detail}]
    )


def build_routes(
    service: AuthService,
    gate: Gate,
    jwks: Jwks,
    trusted_proxies: Sequence[IPNetwork] = (),
) -> list[BaseRoute]:
    def ip(request: Request) -> str:
        return client_ip(request, trusted_proxies) or "unknown"

    async def register(request: Request) -> Response:
        body = await read_json(request, RegisterRequest)
        try:
            user = await service.register(
                str(body.email),
                body.password,
                body.first_name,
                body.last_name,
                ip(request),
                invite=body.invite,
            )
        except InviteRequired as exc:
            raise invite_required(exc.empty) from None
        except RegistrationClosed as exc:
            raise registration_closed(exc.empty) from None
        except InvalidInvite as exc:
            raise invalid_invite(exc.detail) from None
        except Throttled as exc:
            raise _too_many_registrations(exc) from None
        except HashInFlight:
            raise hash_in_flight() from None
        except HashQueueFull:
            raise hash_queue_full() from None
        except EmailTaken:
            raise Problem(
                409, "An account with this email already exists.", slug="email-taken"
            ) from None
        response = json_response(user, status_code=201)
        response.headers["Location"] = "/api/auth/me"
        return response

    async def login(request: Request) -> Response:
        body = await read_json(request, LoginRequest)
        try:
            return _tokens(await service.login(body.email, body.password, ip(request)))
        except Throttled as exc:
            raise _throttled(exc) from None
        except HashInFlight:
            raise hash_in_flight() from None
        except HashQueueFull:
            raise hash_queue_full() from None
        except InvalidCredentials:
            raise unauthorized("The email or password is wrong.") from None
        except AccountDisabled:
            raise Problem(403, "This account is disabled.", slug="account-disabled") from None

    async def refresh(request: Request) -> Response:
        body = await read_json(request, RefreshRequest)
        try:
            return _tokens(await service.refresh(body.refresh_token))
        except InvalidRefreshToken as exc:
            raise unauthorized(exc.detail, error="invalid_grant") from None

    async def logout(request: Request) -> Response:
        body = await read_json(request, RefreshRequest)
        await service.logout(body.refresh_token)
        return Response(status_code=204)

    async def me(request: Request) -> Response:
        principal = await gate.authenticate(request)
        user = await service.user(principal.user_id)
        if user is None or not user.is_active:
            raise unauthorized("The account of this token is disabled or gone.")
        return json_response(user)

    async def delete_me(request: Request) -> Response:
        principal = await gate.authenticate(request)
        principal.require_session()
        body = await read_json(request, DeleteAccountRequest)
        try:
            await service.delete_account(principal.user_id, body.password, ip(request))
        except Throttled as exc:
            raise _throttled(exc) from None
        except HashInFlight:
            raise hash_in_flight() from None
        except HashQueueFull:
            raise hash_queue_full() from None
        except InvalidCredentials:
            raise Problem(
                403,
                "The password is wrong, or the account is already gone.",
                slug="wrong-password",
            ) from None
        except LastAdmin:
            raise last_admin() from None
        return Response(status_code=204)

    async def change_password(request: Request) -> Response:
        principal = await gate.authenticate(request)
        principal.require_session()
        body = await read_json(request, ChangePasswordRequest)
        if body.new_password == body.current_password:
            raise invalid_fields(
                [{"field": "new_password", "message": "It is the current password."}]
            )
        try:
            pair = await service.change_password(
                principal.user_id,
                body.current_password,
                body.new_password,
                ip(request),
                refresh_token=body.refresh_token,
            )
        except Throttled as exc:
            raise _throttled(exc) from None
        except HashInFlight:
            raise hash_in_flight() from None
        except HashQueueFull:
            raise hash_queue_full() from None
        except AccountDisabled:
            raise unauthorized("The account of this token is disabled or gone.") from None
        except InvalidCredentials:
            raise Problem(
                403,
                "The current password is wrong.",
                slug="wrong-password",
                errors=[{"field": "current_password", "message": "It is wrong."}],
            ) from None
        except InvalidRefreshToken as exc:
            raise invalid_fields([{"field": "refresh_token", "message": exc.detail}]) from None
        return _tokens(pair)

    async def jwks_document(request: Request) -> Response:
        response = json_response(jwks)
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    tag = "auth"
    return [
        ApiRoute(
            "/api/auth/register",
            register,
            method="POST",
            tag=tag,
            summary="Create an account (with an invite, when the instance registers by invitation)",
            body=RegisterRequest,
            responses={
                201: User,
                403: "Registration is closed here, or the invite is not valid, used, "
                "expired or for another address",
                409: "The email is taken",
                422: "Invalid field",
                429: "Too many registrations from this client, or a password "
                "check of it still in progress",
                503: "Too many password checks waiting",
            },
        ),
        ApiRoute(
            "/api/auth/login",
            login,
            method="POST",
            tag=tag,
            summary="Exchange email and password for tokens",
            body=LoginRequest,
            responses={
                200: TokenPair,
                401: "Wrong email or password",
                403: "Account disabled",
                429: "Too many failed attempts, or a password check of this "
                "client still in progress",
                503: "Too many password checks waiting",
            },
        ),
        ApiRoute(
            "/api/auth/refresh",
            refresh,
            method="POST",
            tag=tag,
            summary="Rotate a refresh token for a new pair",
            body=RefreshRequest,
            responses={200: TokenPair, 401: "Invalid, expired, revoked or reused token"},
        ),
        ApiRoute(
            "/api/auth/logout",
            logout,
            method="POST",
            tag=tag,
            summary="Revoke the session of a refresh token",
            body=RefreshRequest,
            responses={204: "Logged out"},
        ),
        ApiRoute(
            "/api/auth/me",
            me,
            method="GET",
            tag=tag,
            auth=True,
            summary="The account of the access token",
            responses={200: User, 401: "Missing or invalid access token"},
        ),
        ApiRoute(
            "/api/auth/me",
            delete_me,
            method="DELETE",
            tag=tag,
            auth=True,
            summary="Delete the account (the password again in the body)",
            body=DeleteAccountRequest,
            responses={
                204: "Deleted; every module forgets its data",
                401: "Missing or invalid access token",
                403: "Wrong password",
                409: "The last active admin, while other accounts remain",
                429: "Too many failed attempts, or a password check of this "
                "client still in progress",
                503: "Too many password checks waiting",
            },
        ),
        ApiRoute(
            "/api/auth/password",
            change_password,
            method="POST",
            tag=tag,
            auth=True,
            summary="Change your password: every other session ends; use the new token pair",
            description="Checks `current_password` (under the login's throttle), stores "
            "`new_password` and ends every session of the account but the one of "
            "`refresh_token`, if you send one of yours (it is rotated, as by a refresh). "
            "Without it every session ends and a new one begins. Either way the answer is a "
            "new token pair: access tokens issued before the change stop working.",
            body=ChangePasswordRequest,
            responses={
                200: TokenPair,
                401: "Missing or invalid access token, or the account is disabled",
                403: "Wrong current password",
                422: "Invalid field: a weak or unchanged new password, a refresh token "
                "that is not a live one of yours",
                429: "Too many failed attempts, or a password check of this "
                "client still in progress",
                503: "Too many password checks waiting",
            },
        ),
        ApiRoute(
            "/.well-known/jwks.json",
            jwks_document,
            method="GET",
            tag=tag,
            summary="The public keys that verify access tokens",
            responses={200: Jwks},
        ),
    ]
