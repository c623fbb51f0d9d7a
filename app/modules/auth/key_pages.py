"""auth's API keys page: make a key (shown once), see the keys, revoke one.

The same `ApiKeys` as the `/api/keys` routes, for the session's owner only (an API key
cannot manage keys, as in the API). A change is a POST with the session cookie, which the
Gate lets through only from this site's pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel.access import SCOPES, Gate
from app.kernel.problems import Problem
from app.kernel.tokens import Principal
from app.kernel.web import Pages, read_form, visitor
from app.modules.auth.api_keys import (
    MAX_KEYS,
    AccountGone,
    ApiKeys,
    CreateKey,
    KeyNotFound,
    NewKey,
    TooManyKeys,
)

PATH = "/account/keys"


def build_key_page_routes(keys: ApiKeys, gate: Gate) -> list[BaseRoute]:
    pages = Pages(Path(__file__).parent / "templates")

    async def owner(request: Request) -> Principal | Response:
        principal = await visitor(gate, request)
        if isinstance(principal, Response):
            return principal
        principal.require_session()
        return principal

    async def page(
        request: Request,
        principal: Principal,
        status_code: int = 200,
        new: NewKey | None = None,
        **values: Any,
    ) -> Response:
        context = {
            "keys": await keys.list(principal.user_id),
            "scopes": [s for s in SCOPES if s != "admin" or principal.role == "admin"],
            "new": new,
            "name": "",
            "chosen": ["links:read"],
            "error": None,
            "expires": "",
            "expires_error": None,
            "revoked": request.query_params.get("revoked") is not None,
            **values,
        }
        return pages.render(
            request, "keys.html", context, viewer=principal, status_code=status_code
        )

    async def show(request: Request) -> Response:
        principal = await owner(request)
        if isinstance(principal, Response):
            return principal
        return await page(request, principal)

    async def create(request: Request) -> Response:
        principal = await owner(request)
        if isinstance(principal, Response):
            return principal
        form = await read_form(request, 20)
        name = str(form.get("name", "")).strip()
        chosen = [str(s) for s in form.getlist("scopes")]
        expires = str(form.get("expires", "")).strip()
        typed: dict[str, Any] = {"name": name, "chosen": chosen, "expires": expires}
        try:
            # A day: the key stops working as that day begins, in UTC.
            expires_at = (
                datetime.combine(date.fromisoformat(expires), time(), UTC) if expires else None
            )
        except ValueError:
            return await page(request, principal, 422, **typed, expires_error="Give a date.")
        try:
            body = CreateKey.model_validate(
                {"name": name, "scopes": chosen, "expires_at": expires_at}
            )
        except ValidationError as exc:
            if any(item["loc"][0] == "expires_at" for item in exc.errors()):
                late = "Choose a day after today."
                return await page(request, principal, 422, **typed, expires_error=late)
            error = "Name the key and choose at least one permission."
            return await page(request, principal, 422, **typed, error=error)
        if "admin" in body.scopes and principal.role != "admin":
            error = "Only an admin can give a key the admin permission."
            return await page(request, principal, 403, **typed, error=error)
        try:
            new = await keys.create(principal.user_id, body)
        except AccountGone:
            return RedirectResponse("/login", status_code=303)
        except TooManyKeys:
            error = f"An account holds at most {MAX_KEYS} keys: revoke one first."
            return await page(request, principal, 409, **typed, error=error)
        return await page(request, principal, 201, new=new)

    async def revoke(request: Request) -> Response:
        principal = await owner(request)
        if isinstance(principal, Response):
            return principal
        try:
            await keys.revoke(principal.user_id, UUID(request.path_params["id"]))
        except (ValueError, KeyNotFound):
            raise Problem(404, "You have no such key.", slug="key-not-found") from None
        return RedirectResponse(f"{PATH}?revoked", status_code=303)

    return [
        Route(PATH, show, methods=["GET"]),
        Route(PATH, create, methods=["POST"]),
        Route(PATH + "/{id}/revoke", revoke, methods=["POST"]),
    ]
