"""Accounts an admin provides: invites to register (POST, GET /api/admin/invites, DELETE
/api/admin/invites/{id}) and accounts made directly (POST /api/admin/users).

Whatever ENCURTA_AUTH__REGISTRATION says, an admin may do both: with `closed`, this and
`encurta users create` are the only ways an account is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import client_ip, client_key, json_response, read_json
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem
from app.kernel.settings import IPNetwork
from app.modules.auth.admin import Accounts, NotAdmin, not_admin, require_admin
from app.modules.auth.invites import InviteList, InviteRequest, Invites, MakerGone, NewInvite
from app.modules.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    HashInFlight,
    HashQueueFull,
    Passwords,
)
from app.modules.auth.routes import hash_in_flight, hash_queue_full
from app.modules.auth.schemas import User, strong_enough
from app.modules.auth.tables import users
from app.modules.auth.users import ROLES_LOCK, EmailTaken, insert_user


class CreateUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)
    password: str = Field(
        description="8 to 256 characters, not a common password.",
        json_schema_extra={"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH},
    )
    role: Literal["admin", "user"] = "user"
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)

    @field_validator("password")
    @classmethod
    def _strong_enough(cls, password: str) -> str:
        return strong_enough(password)


@dataclass
class Provisioning:
    engine: AsyncEngine
    passwords: Passwords

    async def create_user(self, caller: UUID, body: CreateUserRequest, client: str) -> User:
        """The account, made if the caller is still an admin once the role changes before
        it are done (as in Accounts.change)."""
        with self.passwords.slot(client) as slot:
            password_hash = await self.passwords.hash(body.password, slot=slot)
        async with self.engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(ROLES_LOCK)))
            still = await conn.execute(
                select(users.c.id).where(
                    users.c.id == caller, users.c.role == "admin", users.c.is_active
                )
            )
            if still.one_or_none() is None:
                raise NotAdmin
            row = await insert_user(
                conn,
                str(body.email),
                password_hash,
                first_name=body.first_name,
                last_name=body.last_name,
                role=body.role,
            )
        return User.model_validate(row, from_attributes=True)


def _no_invite() -> Problem:
    return Problem(404, "There is no such unused invite.", slug="invite-not-found")


def build_provisioning_routes(
    engine: AsyncEngine,
    passwords: Passwords,
    gate: Gate,
    trusted_proxies: Sequence[IPNetwork] = (),
) -> list[BaseRoute]:
    accounts = Accounts(engine)
    invites = Invites(engine)
    provisioning = Provisioning(engine, passwords)

    async def create_invite(request: Request) -> Response:
        caller = await require_admin(request, gate, accounts)
        body = await read_json(request, InviteRequest)
        email = str(body.email) if body.email is not None else None
        try:
            invite = await invites.create(caller, email, body.expires_in_hours)
        except MakerGone:
            raise not_admin() from None
        response = json_response(invite, status_code=201)
        response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return response

    async def list_invites(request: Request) -> Response:
        await require_admin(request, gate, accounts)
        return json_response(InviteList(items=await invites.unused()))

    async def revoke_invite(request: Request) -> Response:
        await require_admin(request, gate, accounts)
        try:
            invite_id = UUID(request.path_params["id"])
        except ValueError:
            raise _no_invite() from None
        if not await invites.revoke(invite_id):
            raise _no_invite()
        return Response(status_code=204)

    async def create_user(request: Request) -> Response:
        caller = await require_admin(request, gate, accounts)
        body = await read_json(request, CreateUserRequest)
        client = client_key(client_ip(request, trusted_proxies) or "unknown")
        try:
            user = await provisioning.create_user(caller, body, client)
        except HashInFlight:
            raise hash_in_flight() from None
        except HashQueueFull:
            raise hash_queue_full() from None
        except NotAdmin:
            raise not_admin() from None
        except EmailTaken:
            raise Problem(
                409, "An account with this email already exists.", slug="email-taken"
            ) from None
        return json_response(user, status_code=201)

    tag = "admin"
    forbidden = "Not an admin"
    return [
        ApiRoute(
            "/api/admin/users",
            create_user,
            method="POST",
            tag=tag,
            auth=True,
            summary="Create an account, whatever the registration setting (admins only)",
            body=CreateUserRequest,
            responses={
                201: User,
                403: forbidden,
                409: "The email is taken",
                429: "A password check of this client is still in progress",
                503: "Too many password checks waiting",
            },
        ),
        ApiRoute(
            "/api/admin/invites",
            create_invite,
            method="POST",
            tag=tag,
            auth=True,
            summary="Make an invite to register: single use, expiring, its token shown "
            "once (admins only)",
            body=InviteRequest,
            responses={201: NewInvite, 403: forbidden},
        ),
        ApiRoute(
            "/api/admin/invites",
            list_invites,
            method="GET",
            tag=tag,
            auth=True,
            summary="The unused invites, newest first, without their tokens (admins only)",
            responses={200: InviteList, 403: forbidden},
        ),
        ApiRoute(
            "/api/admin/invites/{id}",
            revoke_invite,
            method="DELETE",
            tag=tag,
            auth=True,
            summary="Revoke an unused invite (admins only)",
            path_params={"id": {"type": "string", "format": "uuid"}},
            responses={204: "Revoked", 403: forbidden, 404: "No such unused invite"},
        ),
    ]
