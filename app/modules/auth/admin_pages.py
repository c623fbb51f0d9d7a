"""auth's admin pages: the accounts (disable, enable, role, create) and the invites.

The same services as `/api/admin/users` and `/api/admin/invites` (`Accounts`,
`Provisioning`, `Invites`), which check again, under the roles' lock, that the caller is
still an active admin. The page itself asks auth's table, not only the token's claim, so an
admin demoted a moment ago sees a 403 at once. A change is a POST with the session cookie,
which the Gate lets through only from this site's pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import Gate
from app.kernel.http import client_ip, client_key, is_https
from app.kernel.problems import Problem
from app.kernel.settings import IPNetwork
from app.kernel.tokens import Principal
from app.kernel.web import Pages, read_form, renew_session, visitor
from app.modules.auth.account_pages import field_errors
from app.modules.auth.admin import Accounts, NotAdmin, UserNotFound, not_admin
from app.modules.auth.invites import (
    DEFAULT_HOURS,
    MAX_HOURS,
    InviteRequest,
    Invites,
    MakerGone,
    NewInvite,
)
from app.modules.auth.passwords import HashInFlight, HashQueueFull, Passwords
from app.modules.auth.provisioning import CreateUserRequest, Provisioning
from app.modules.auth.users import EmailTaken, LastAdmin

USERS = "/admin/users"
INVITES = "/admin/invites"
PER_PAGE = 50
_LAST_ADMIN = "The instance must keep at least one active admin: make another admin first."
# What a user's form asks for, as the changes `Accounts.change` applies.
_ACTIONS: dict[str, dict[str, object]] = {
    "disable": {"is_active": False},
    "enable": {"is_active": True},
    "make-admin": {"role": "admin"},
    "make-user": {"role": "user"},
}
_DONE = {
    "disable": "is disabled: its sessions and keys stop working.",
    "enable": "is enabled again.",
    "make-admin": "is an admin now.",
    "make-user": "is a user now.",
}


def _page_number(value: object) -> int:
    try:
        return min(max(int(str(value)), 1), 100_000)
    except ValueError:
        return 1


def build_admin_page_routes(
    engine: AsyncEngine,
    passwords: Passwords,
    gate: Gate,
    registration: str,
    trusted_proxies: Sequence[IPNetwork] = (),
) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")
    accounts = Accounts(engine)
    invites = Invites(engine)
    provisioning = Provisioning(engine, passwords)

    async def admin(request: Request) -> Principal | Response:
        principal = await visitor(gate, request)
        if isinstance(principal, Response):
            return principal
        principal.require_session()
        principal.require_admin()
        role = await accounts.role(principal.user_id)
        if role is None:  # disabled or deleted since the token was issued
            return renew_session(request)
        if role != "admin":
            raise not_admin()
        return principal

    async def users_page(
        request: Request, principal: Principal, status_code: int = 200, **values: Any
    ) -> Response:
        number = _page_number(values.pop("page", request.query_params.get("page", 1)))
        items, total = await accounts.page(number, PER_PAGE)
        notice = None
        changed, action = request.query_params.get("changed"), request.query_params.get("did")
        if changed and action in _DONE:
            who = next((u.email for u in items if str(u.id) == changed), "The account")
            notice = f"{who} {_DONE[action]}"
        elif request.query_params.get("created"):
            notice = f"The account {request.query_params['created']} is created."
        context = {
            "users": items,
            "total": total,
            "page": number,
            "pages": max(1, -(-total // PER_PAGE)),
            "me": principal.user_id,
            "notice": notice,
            "refusal": None,
            "email": "",
            "make_admin": False,
            "errors": {},
            **values,
        }
        return pages.render(
            request, "admin_users.html", context, viewer=principal, status_code=status_code
        )

    async def show_users(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        return await users_page(request, principal)

    async def change_user(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 10)
        action, number = str(form.get("action", "")), _page_number(form.get("page", 1))
        try:
            user_id = UUID(request.path_params["id"])
        except ValueError:
            raise Problem(404, "There is no such account.", slug="user-not-found") from None
        if action not in _ACTIONS:
            raise Problem(422, "Choose disable, enable, make-admin or make-user.", slug="action")
        try:
            await accounts.change(principal.user_id, user_id, dict(_ACTIONS[action]))
        except NotAdmin:
            raise not_admin() from None
        except UserNotFound:
            raise Problem(404, "There is no such account.", slug="user-not-found") from None
        except LastAdmin:
            return await users_page(request, principal, 409, page=number, refusal=_LAST_ADMIN)
        to = f"{USERS}?page={number}&changed={user_id}&did={action}"
        return RedirectResponse(to, status_code=303)

    async def create_user(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 10)
        email, make_admin = str(form.get("email", "")).strip(), form.get("admin") is not None
        fields = {"email": email, "password": str(form.get("password", ""))}
        fields["role"] = "admin" if make_admin else "user"

        async def again(
            status: int, errors: dict[str, str], refusal: str | None = None
        ) -> Response:
            values = {"email": email, "make_admin": make_admin, "errors": errors}
            return await users_page(request, principal, status, refusal=refusal, **values)

        try:
            body = CreateUserRequest.model_validate(fields)
        except ValidationError as exc:
            return await again(422, field_errors(exc))
        client = client_key(client_ip(request, trusted_proxies) or "unknown")
        try:
            user = await provisioning.create_user(principal.user_id, body, client)
        except (HashInFlight, HashQueueFull):
            return await again(503, {}, "The server is busy checking passwords. Try again.")
        except NotAdmin:
            raise not_admin() from None
        except EmailTaken:
            return await again(409, {"email": "An account with this email already exists."})
        return RedirectResponse(f"{USERS}?created={quote(user.email)}", status_code=303)

    def origin(request: Request) -> str:
        """This site as the browser reached it (https behind a trusted TLS proxy)."""
        scheme = "https" if is_https(request, trusted_proxies) else "http"
        return f"{scheme}://{request.headers.get('host', request.url.netloc)}"

    async def invites_page(
        request: Request,
        principal: Principal,
        status_code: int = 200,
        new: NewInvite | None = None,
        **values: Any,
    ) -> Response:
        context = {
            "invites": await invites.unused(),
            "new": new,
            "link": f"{origin(request)}/signup?invite={new.token}" if new else "",
            "registration": registration,
            "revoked": request.query_params.get("revoked") is not None,
            "email": "",
            "hours": DEFAULT_HOURS,
            "max_hours": MAX_HOURS,
            "errors": {},
            **values,
        }
        return pages.render(
            request, "admin_invites.html", context, viewer=principal, status_code=status_code
        )

    async def show_invites(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        return await invites_page(request, principal)

    async def create_invite(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 10)
        email, hours = str(form.get("email", "")).strip(), str(form.get("hours", "")).strip()
        fields: dict[str, object] = {"expires_in_hours": hours or DEFAULT_HOURS}
        if email:
            fields["email"] = email
        try:
            body = InviteRequest.model_validate(fields)
        except ValidationError as exc:
            errors = field_errors(exc)
            if "expires_in_hours" in errors:
                errors["hours"] = f"A whole number of hours, 1 to {MAX_HOURS}."
            values: dict[str, Any] = {"email": email, "hours": hours, "errors": errors}
            return await invites_page(request, principal, 422, **values)
        try:
            new = await invites.create(
                principal.user_id, str(body.email) if body.email else None, body.expires_in_hours
            )
        except MakerGone:
            raise not_admin() from None
        return await invites_page(request, principal, 201, new=new)

    async def revoke_invite(request: Request) -> Response:
        principal = await admin(request)
        if isinstance(principal, Response):
            return principal
        try:
            gone = await invites.revoke(UUID(request.path_params["id"]))
        except ValueError:
            gone = False
        if not gone:
            raise Problem(404, "There is no such unused invite.", slug="invite-not-found")
        return RedirectResponse(f"{INVITES}?revoked", status_code=303)

    return [
        Route(USERS, show_users, methods=["GET"]),
        Route(USERS, create_user, methods=["POST"]),
        Route(USERS + "/{id}", change_user, methods=["POST"]),
        Route(INVITES, show_invites, methods=["GET"]),
        Route(INVITES, create_invite, methods=["POST"]),
        Route(INVITES + "/{id}/revoke", revoke_invite, methods=["POST"]),
    ]
