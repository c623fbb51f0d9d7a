"""Invitations to register, for `ENCURTA_AUTH__REGISTRATION=invite`.

An admin makes one; its token is shown once and only its SHA-256 is stored (256 random
bits need no slow hash). It is single use and expires; it may be bound to one address.
Registration takes it in the same transaction as it inserts the account: of concurrent
registrations with one invite, exactly one makes an account (the row is updated where it
is still unused, and PostgreSQL re-checks that condition after the first commits).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.modules.auth.emails import email_key
from app.modules.auth.tables import invites, users

DEFAULT_HOURS = 72
MAX_HOURS = 720  # 30 days


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = Field(
        default=None, max_length=320, description="Only this address may use the invite."
    )
    expires_in_hours: int = Field(default=DEFAULT_HOURS, ge=1, le=MAX_HOURS)


class Invite(BaseModel):
    """An unused invite (its token is never shown again)."""

    id: UUID
    email: str | None
    created_at: datetime
    expires_at: datetime
    expired: bool


class NewInvite(Invite):
    token: str = Field(
        description="Shown this once: give it to the invitee, who sends it as `invite` to "
        "POST /api/auth/register."
    )


class InviteList(BaseModel):
    """The unused invites, newest first, expired ones included (until revoked)."""

    items: list[Invite]


class MakerGone(Exception):
    """The admin making an invite was deleted, disabled or demoted meanwhile."""


class InvalidInvite(Exception):
    """The invite cannot be used; `detail` says why, to its holder."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# An invite is worth what its maker is: one made by an admin since disabled, demoted or
# deleted registers no one.
_MAKER_IS_ADMIN = (
    select(users.c.id)
    .where(users.c.id == invites.c.created_by, users.c.role == "admin", users.c.is_active)
    .exists()
)


_COLUMNS = [invites.c.id, invites.c.email, invites.c.created_at, invites.c.expires_at]


async def check_invite(conn: AsyncConnection, token: str, email: str) -> None:
    """Raise InvalidInvite unless `token` is an invite `email` may use now. A look only:
    `take_invite` decides, in the registration's transaction."""
    row = (
        await conn.execute(
            select(
                invites.c.email_key,
                invites.c.expires_at,
                invites.c.used_at,
                _MAKER_IS_ADMIN.label("maker_is_admin"),
            ).where(invites.c.token_hash == _hash(token))
        )
    ).one_or_none()
    if row is None:
        raise InvalidInvite("The invite is not valid.")
    if row.used_at is not None:
        raise InvalidInvite("The invite has already been used.")
    if row.expires_at <= datetime.now(UTC):
        raise InvalidInvite("The invite has expired.")
    if row.email_key is not None and row.email_key != email_key(email):
        raise InvalidInvite("The invite is for another email address.")
    if not row.maker_is_admin:
        raise InvalidInvite("The invite's maker is no longer an admin of this instance.")


async def take_invite(conn: AsyncConnection, token: str, email: str) -> UUID:
    """Mark the invite used, in the caller's transaction, and return its id; raise
    InvalidInvite (saying why) when it cannot be used."""
    key = email_key(email)
    taken = (
        await conn.execute(
            update(invites)
            .where(
                invites.c.token_hash == _hash(token),
                invites.c.used_at.is_(None),
                invites.c.expires_at > datetime.now(UTC),
                invites.c.email_key.is_(None) | (invites.c.email_key == key),
                _MAKER_IS_ADMIN,
            )
            .values(used_at=datetime.now(UTC))
            .returning(invites.c.id)
        )
    ).scalar_one_or_none()
    if taken is None:
        await check_invite(conn, token, email)  # raises, saying why
        raise InvalidInvite("The invite is not valid.")  # gone meanwhile
    invite_id: UUID = taken
    return invite_id


async def invite_used_by(conn: AsyncConnection, invite_id: UUID, user_id: UUID) -> None:
    await conn.execute(update(invites).where(invites.c.id == invite_id).values(used_by=user_id))


def _invite(row: Row[Any], now: datetime) -> Invite:
    return Invite.model_validate({**row._mapping, "expired": row.expires_at <= now})


@dataclass
class Invites:
    engine: AsyncEngine

    async def create(self, caller: UUID, email: str | None, hours: int) -> NewInvite:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            # Its maker, kept from going away until the invite commits (else a foreign-key
            # error would answer for an admin deleted or demoted meanwhile).
            maker = await conn.execute(
                select(users.c.id)
                .where(users.c.id == caller, users.c.role == "admin", users.c.is_active)
                .with_for_update(key_share=True, read=True)
            )
            if maker.one_or_none() is None:
                raise MakerGone
            row = (
                await conn.execute(
                    insert(invites)
                    .values(
                        id=uuid.uuid4(),
                        token_hash=_hash(token),
                        email=email,
                        email_key=email_key(email) if email is not None else None,
                        created_by=caller,
                        created_at=now,
                        expires_at=now + timedelta(hours=hours),
                    )
                    .returning(*_COLUMNS)
                )
            ).one()
        return NewInvite(**_invite(row, now).model_dump(), token=token)

    async def unused(self) -> list[Invite]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_COLUMNS)
                    .where(invites.c.used_at.is_(None))
                    .order_by(invites.c.created_at.desc(), invites.c.id)
                )
            ).all()
        now = datetime.now(UTC)
        return [_invite(row, now) for row in rows]

    async def revoke(self, invite_id: UUID) -> bool:
        """Delete an unused invite; False when there is none of that id."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(invites).where(invites.c.id == invite_id, invites.c.used_at.is_(None))
            )
        return bool(result.rowcount)
