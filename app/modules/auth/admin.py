"""Administering the accounts of an instance: list them, disable or enable one, change a role.

Only an admin may, as auth itself knows from its own table (not from a token claim, so a
demoted admin loses the right at once). The instance keeps at least one active admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import json_response, read_json, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.tokens import unauthorized
from app.modules.auth.schemas import User
from app.modules.auth.sessions import access_changed, end_sessions
from app.modules.auth.tables import users
from app.modules.auth.users import (
    ROLES_LOCK,
    USER_COLUMNS,
    LastAdmin,
    active_role,
    keep_an_admin,
)


class UserQuery(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000, description="From 1.")
    per_page: int = Field(default=50, ge=1, le=200, description="Accounts per page.")


class UserPage(BaseModel):
    """Accounts of the instance, oldest first."""

    items: list[User]
    page: int
    per_page: int
    total: int


class ChangeUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_active: bool | None = Field(
        default=None, description="false: the account cannot log in and its sessions end."
    )
    role: Literal["admin", "user"] | None = None


class NotAdmin(Exception):
    """The caller is not (or no longer) an active admin."""


class UserNotFound(Exception):
    pass


@dataclass
class Accounts:
    engine: AsyncEngine

    async def role(self, user_id: UUID) -> str | None:
        """The role of an active account; None for a disabled or unknown one."""
        async with self.engine.connect() as conn:
            return await active_role(conn, user_id)

    async def page(self, page: int, per_page: int) -> tuple[list[User], int]:
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
            rows = (
                await conn.execute(
                    select(*USER_COLUMNS)
                    .order_by(users.c.created_at, users.c.id)
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
            ).all()
        return [User.model_validate(row, from_attributes=True) for row in rows], total

    async def change(self, caller: UUID, user_id: UUID, changes: dict[str, object]) -> User:
        """Apply the changes, if the caller is still an admin once the changes of roles
        before it are done; a disabled account's sessions end in the same transaction."""
        async with self.engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(ROLES_LOCK)))
            still = await conn.execute(
                select(users.c.id).where(
                    users.c.id == caller, users.c.role == "admin", users.c.is_active
                )
            )
            if still.one_or_none() is None:
                raise NotAdmin
            row = (
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(**changes, updated_at=func.now())
                    .returning(*USER_COLUMNS)
                )
            ).one_or_none()
            if row is None:
                raise UserNotFound
            await keep_an_admin(conn)
            if changes.get("is_active") is False:
                await end_sessions(conn, user_id)
            else:
                await access_changed(conn, user_id)
        return User.model_validate(row, from_attributes=True)


def last_admin() -> Problem:
    return Problem(
        409,
        "The instance must keep at least one active admin: make another admin first.",
        slug="last-admin",
    )


def not_admin() -> Problem:
    return Problem(403, "Only an admin of this instance may do this.", slug="not-admin")


async def require_admin(request: Request, gate: Gate, accounts: Accounts) -> UUID:
    """The caller's id, if the token (or an `admin` key) is good and its account an active
    admin now."""
    principal = await gate.authenticate(request, "admin")
    role = await accounts.role(principal.user_id)
    if role is None:
        raise unauthorized("The account of this token is disabled or gone.")
    if role != "admin":
        raise not_admin()
    return principal.user_id


def build_admin_routes(accounts: Accounts, gate: Gate) -> list[BaseRoute]:
    async def admin(request: Request) -> UUID:
        return await require_admin(request, gate, accounts)

    async def list_users(request: Request) -> Response:
        await admin(request)
        query = read_query(request, UserQuery)
        items, total = await accounts.page(query.page, query.per_page)
        return json_response(
            UserPage(items=items, page=query.page, per_page=query.per_page, total=total)
        )

    async def change_user(request: Request) -> Response:
        caller = await admin(request)
        body = await read_json(request, ChangeUser)
        try:
            user_id = UUID(request.path_params["id"])
        except ValueError:
            raise Problem(404, "There is no such account.", slug="user-not-found") from None
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        for name, value in changes.items():
            if value is None:
                raise invalid_fields([{"field": name, "message": "It cannot be null."}])
        try:
            user = await accounts.change(caller, user_id, changes)
        except NotAdmin:
            raise not_admin() from None
        except UserNotFound:
            raise Problem(404, "There is no such account.", slug="user-not-found") from None
        except LastAdmin:
            raise last_admin() from None
        return json_response(user)

    tag = "admin"
    return [
        ApiRoute(
            "/api/admin/users",
            list_users,
            method="GET",
            tag=tag,
            auth=True,
            summary="Every account of the instance, oldest first (admins only)",
            query=UserQuery,
            responses={200: UserPage, 401: "No or invalid access token", 403: "Not an admin"},
        ),
        ApiRoute(
            "/api/admin/users/{id}",
            change_user,
            method="PATCH",
            tag=tag,
            auth=True,
            summary="Disable or enable an account, or change its role (admins only)",
            path_params={"id": {"type": "string", "format": "uuid"}},
            body=ChangeUser,
            responses={
                200: User,
                401: "No or invalid access token",
                403: "Not an admin",
                404: "No such account",
                409: "It would leave no active admin",
                422: "Invalid field",
            },
        ),
    ]
