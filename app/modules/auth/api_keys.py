"""API keys: long-lived credentials for integrations, each limited to the scopes it names.

A key is shown once, at creation; auth keeps its name, prefix and scopes for its owner's
list, and publishes its hash so that every module admits it (app.kernel.access). A key
of an admin may hold the `admin` scope; a key never acts beyond its owner's current role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.bus.outbox import write_outbox
from app.contracts.auth import ApiKeyIssued, ApiKeyRevoked
from app.kernel.access import SCOPES, AccessList, Gate, Scope, api_key_hash, new_api_key
from app.kernel.http import json_response, read_json
from app.kernel.limits import Limit
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.tokens import unauthorized
from app.modules.auth.tables import access_keys, api_keys, users

MAX_KEYS = 50  # per account: enough for every integration, not for a leak to hide in
_PREFIX_LENGTH = 10  # "enc_" and six characters
# Auth's own copy of last use: the keys' uses on auth's routes. (Each module keeps its own.)
_WITH_USE = api_keys.outerjoin(access_keys, access_keys.c.key_id == api_keys.c.id)


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the key is for.")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    expires_at: datetime | None = Field(default=None, description="In the future; none: never.")

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[Scope]) -> list[Scope]:
        return sorted(set(scopes), key=SCOPES.index)

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Give a time zone (e.g. 2027-01-01T00:00:00Z).")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("It is too far in the future.") from None
        if value.year > 9000:  # PostgreSQL stores no year past 294276, Python none past 9999
            raise ValueError("It is too far in the future.")
        if value <= datetime.now(UTC):
            raise ValueError("It must be in the future.")
        return value


class KeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell it apart.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="At most a minute behind, per module.")


class NewKey(KeyOut):
    key: str = Field(description="Shown once: store it now.")


class KeyList(BaseModel):
    items: list[KeyOut]


class TooManyKeys(Exception):
    pass


class AccountGone(Exception):
    """Deleted while the request ran."""


class KeyNotFound(Exception):
    pass


@dataclass
class ApiKeys:
    engine: AsyncEngine
    access: AccessList
    # Keys created per user in a window (a 429 Problem when over): MAX_KEYS bounds the
    # keys held, this the churn of creating and revoking them.
    limit: Limit | None = None

    async def create(self, user_id: UUID, body: CreateKey) -> NewKey:
        if self.limit is not None:
            await self.limit.check(str(user_id), "API keys created by this user")
        key, key_id = new_api_key(), uuid4()
        async with self.engine.begin() as conn:
            role = (
                await conn.execute(
                    select(users.c.role).where(users.c.id == user_id).with_for_update()
                )
            ).scalar_one_or_none()
            if role is None:
                raise AccountGone
            count = (
                await conn.execute(
                    select(func.count()).select_from(api_keys).where(api_keys.c.user_id == user_id)
                )
            ).scalar_one()
            if count >= MAX_KEYS:
                raise TooManyKeys
            if "admin" in body.scopes and role != "admin":
                raise invalid_fields(
                    [{"field": "scopes", "message": "Only an admin's key may hold 'admin'."}]
                )
            row = (
                await conn.execute(
                    api_keys.insert()
                    .values(
                        id=key_id,
                        user_id=user_id,
                        name=body.name,
                        prefix=key[:_PREFIX_LENGTH],
                        scopes=list(body.scopes),
                        expires_at=body.expires_at,
                    )
                    .returning(*api_keys.c)
                )
            ).one()
            issued = ApiKeyIssued(
                user_id=user_id,
                key_id=key_id,
                key_hash=api_key_hash(key).hex(),
                role="admin" if role == "admin" else "user",
                scopes=tuple(body.scopes),
                expires_at=body.expires_at,
            )
            await self.access.key_issued(
                conn,
                key_id=key_id,
                key_hash=api_key_hash(key),
                user_id=user_id,
                role=issued.role,
                scopes=issued.scopes,
                expires_at=issued.expires_at,
            )
            await write_outbox(conn, [issued])
        return NewKey(**row._mapping, last_used_at=None, key=key)

    async def list(self, user_id: UUID) -> list[KeyOut]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*api_keys.c, access_keys.c.last_used_at)
                    .select_from(
                        api_keys.outerjoin(access_keys, access_keys.c.key_id == api_keys.c.id)
                    )
                    .where(api_keys.c.user_id == user_id)
                    .order_by(api_keys.c.created_at, api_keys.c.id)
                )
            ).all()
        return [KeyOut(**row._mapping) for row in rows]

    async def revoke(self, user_id: UUID, key_id: UUID) -> None:
        async with self.engine.begin() as conn:
            hashed = (
                await conn.execute(
                    select(access_keys.c.key_hash).where(
                        access_keys.c.key_id == key_id, access_keys.c.user_id == user_id
                    )
                )
            ).scalar_one_or_none()
            gone = await conn.execute(
                delete(api_keys).where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
            )
            if gone.rowcount == 0 or hashed is None:
                raise KeyNotFound
            await self.access.key_revoked(conn, key_id=key_id, key_hash=hashed, user_id=user_id)
            await write_outbox(
                conn, [ApiKeyRevoked(user_id=user_id, key_id=key_id, key_hash=hashed.hex())]
            )


def _no_such_key() -> Problem:
    return Problem(404, "There is no such API key.", slug="api-key-not-found")


def build_key_routes(keys: ApiKeys, gate: Gate) -> list[BaseRoute]:
    async def create(request: Request) -> Response:
        principal = await gate.authenticate(request)
        principal.require_session()
        body = await read_json(request, CreateKey)
        try:
            new = await keys.create(principal.user_id, body)
        except AccountGone:
            raise unauthorized("The account of this token is gone.") from None
        except TooManyKeys:
            raise Problem(
                409,
                f"An account holds at most {MAX_KEYS} keys: revoke one first.",
                slug="too-many-keys",
            ) from None
        response = json_response(new, status_code=201)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def list_keys(request: Request) -> Response:
        principal = await gate.authenticate(request)
        principal.require_session()
        return json_response(KeyList(items=await keys.list(principal.user_id)))

    async def revoke(request: Request) -> Response:
        principal = await gate.authenticate(request)
        principal.require_session()
        try:
            key_id = UUID(request.path_params["id"])
            await keys.revoke(principal.user_id, key_id)
        except (ValueError, KeyNotFound):
            raise _no_such_key() from None
        return Response(status_code=204)

    tag = "keys"
    return [
        ApiRoute(
            "/api/keys",
            create,
            method="POST",
            tag=tag,
            auth=True,
            summary="Create an API key; the key is in this answer only (a login is needed)",
            body=CreateKey,
            responses={
                201: NewKey,
                409: "The account holds the most keys it may",
                429: "Too many keys created by this user (Retry-After, RateLimit)",
            },
        ),
        ApiRoute(
            "/api/keys",
            list_keys,
            method="GET",
            tag=tag,
            auth=True,
            summary="The caller's API keys, oldest first, without the keys themselves",
            responses={200: KeyList},
        ),
        ApiRoute(
            "/api/keys/{id}",
            revoke,
            method="DELETE",
            tag=tag,
            auth=True,
            summary="Revoke an API key: every module refuses it within seconds",
            path_params={"id": {"type": "string", "format": "uuid"}},
            responses={204: "Revoked", 404: "No such key of the caller's"},
        ),
    ]
