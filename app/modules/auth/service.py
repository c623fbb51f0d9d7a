"""The auth use cases: register, log in, rotate a refresh token, log out, who am I."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Row, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bus.outbox import write_outbox
from app.contracts.auth import UserDeleted
from app.kernel.http import client_key
from app.modules.auth.emails import email_key
from app.modules.auth.invites import check_invite, invite_used_by, take_invite
from app.modules.auth.passwords import Passwords
from app.modules.auth.schemas import TokenPair, User
from app.modules.auth.sessions import end_sessions
from app.modules.auth.shared_throttle import Guard
from app.modules.auth.tables import refresh_tokens, users
from app.modules.auth.tokens import AccessTokenIssuer, new_refresh_token, refresh_token_hash
from app.modules.auth.users import (
    ROLES_LOCK,
    USER_COLUMNS,
    active_role,
    insert_user,
    keep_an_admin,
    store_password,
)


class RegistrationClosed(Exception):
    """POST /api/auth/register makes no account here (ENCURTA_AUTH__REGISTRATION=closed),
    or not without an invite (=invite). `empty`: the instance has no account yet, so its
    first admin is made on the server (`encurta users create`)."""

    def __init__(self, *, empty: bool) -> None:
        super().__init__()
        self.empty = empty


class InviteRequired(RegistrationClosed):
    pass


class InvalidCredentials(Exception):
    pass


class AccountDisabled(Exception):
    pass


class InvalidRefreshToken(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# A row of a session that ended (logged out, or revoked for reuse) is kept until it has
# been revoked this long, so a client late by less is told "revoked", not "not valid".
ENDED_SESSION_GRACE = timedelta(hours=1)
_PURGE_BATCH = 10_000


def _user(row: Any) -> User:
    return User.model_validate(row, from_attributes=True)


@dataclass
class AuthService:
    engine: AsyncEngine
    passwords: Passwords
    access_tokens: AccessTokenIssuer
    throttle: Guard  # password guesses and registrations (throttle.py, shared_throttle.py)
    refresh_ttl: timedelta
    registration: Literal["open", "invite", "closed"] = "open"

    async def register(
        self,
        email: str,
        password: str,
        first_name: str | None,
        last_name: str | None,
        client_ip: str,
        invite: str | None = None,
    ) -> User:
        """Make an account, as `registration` allows: anyone (open), the holder of an
        invite, taken in the same transaction as the account is made (invite; an invite
        sent to an open instance is ignored), or nobody (closed)."""
        if self.registration == "closed":
            raise RegistrationClosed(empty=await self._empty())
        if self.registration == "invite":
            if invite is None:
                raise InviteRequired(empty=await self._empty())
            async with self.engine.connect() as conn:
                await check_invite(conn, invite, email)  # before a hash is spent on it
        # One hash per client at a time (raises HashInFlight or HashQueueFull), taken
        # first: a request refused for it is not counted against the client.
        with self.passwords.slot(client_key(client_ip)) as slot:
            await self.throttle.register(client_ip)  # raises Throttled; counted before the hash
            password_hash = await self.passwords.hash(password, slot=slot)
        async with self.engine.begin() as conn:
            # Any exception rolls both back: the invite is used only if the account is made.
            taken = None
            if self.registration == "invite" and invite is not None:
                taken = await take_invite(conn, invite, email)  # raises InvalidInvite
            row = await insert_user(
                conn, email, password_hash, first_name=first_name, last_name=last_name
            )
            if taken is not None:
                await invite_used_by(conn, taken, row.id)
        return _user(row)

    async def login(self, email: str, password: str, client_ip: str) -> TokenPair:
        key = email_key(email)
        # The client's one hash slot first (raises HashInFlight or HashQueueFull): a
        # request refused for it never reaches the throttle, so nothing is counted and
        # nothing checked. Then counted as a failure before the hash, refunded if the
        # password is right.
        with self.passwords.slot(client_key(client_ip)) as slot:
            async with self.throttle.attempt(key, client_ip) as attempt:  # raises Throttled
                async with self.engine.connect() as conn:
                    row = (
                        await conn.execute(
                            select(
                                users.c.id, users.c.password_hash, users.c.is_active, users.c.role
                            ).where(users.c.email_key == key)
                        )
                    ).one_or_none()
                valid, new_hash = await self.passwords.verify(
                    password, row.password_hash if row else None, slot=slot
                )
                if row is None or not valid:
                    raise InvalidCredentials
                await attempt.succeeded()
        if not row.is_active:
            raise AccountDisabled
        async with self.engine.begin() as conn:
            # The account as it is now, locked until the tokens commit: a password changed
            # or the account disabled while the hash ran wins. (Such a change locks the row
            # too: it waits for these tokens and then ends them, or this waits for it.)
            now = (
                await conn.execute(
                    select(users.c.password_hash, users.c.is_active, users.c.role)
                    .where(users.c.id == row.id)
                    .with_for_update(key_share=True)
                )
            ).one_or_none()
            if now is None or now.password_hash != row.password_hash:
                raise InvalidCredentials
            if not now.is_active:
                raise AccountDisabled
            if new_hash is not None:
                await conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=new_hash, updated_at=func.now())
                )
            pair, _ = await self._issue(conn, row.id, now.role, family_id=uuid.uuid4())
            return pair

    async def refresh(self, token: str, grace_seconds: float = 0) -> TokenPair:
        """Rotate: the presented token is revoked and replaced by a new one of its family.

        A token that was already rotated is being reused, by a thief or by the owner
        after a thief: the whole family is revoked. Within `grace_seconds` of its
        rotation, though, it gets a new pair of the same family instead: two tabs of one
        browser renewing its session at once (the web app's cookie; the API has none).
        The row lock serialises concurrent refreshes of one token, so at most one of them
        rotates it. The account's row is
        locked first (shared), as a password change or a disabling locks it before ending
        the sessions: either the change waits and then ends the token made here, or this
        waits and finds its token revoked.
        """
        hashed = refresh_token_hash(token)
        async with self.engine.begin() as conn:
            owner = select(refresh_tokens.c.user_id).where(refresh_tokens.c.token_hash == hashed)
            await conn.execute(
                select(users.c.id)
                .where(users.c.id == owner.scalar_subquery())
                .with_for_update(read=True)
            )
            row = (
                await conn.execute(
                    select(refresh_tokens)
                    .where(refresh_tokens.c.token_hash == hashed)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:
                raise InvalidRefreshToken("The refresh token is not valid.")
            reused = row.revoked_at is not None and row.replaced_by is not None
            if reused and await _just_rotated(conn, row, grace_seconds):
                if (role := await active_role(conn, row.user_id)) is None:
                    raise InvalidRefreshToken("The account is disabled or gone.")
                pair, _ = await self._issue(conn, row.user_id, role, family_id=row.family_id)
                return pair
            if reused:
                await self._revoke_family(conn, row.family_id)
            elif row.revoked_at is not None:
                raise InvalidRefreshToken("The refresh token has been revoked.")
            elif row.expires_at <= datetime.now(UTC):
                raise InvalidRefreshToken("The refresh token has expired.")
            elif (role := await active_role(conn, row.user_id)) is None:
                raise InvalidRefreshToken("The account is disabled or gone.")
            else:
                pair, successor = await self._issue(
                    conn, row.user_id, role, family_id=row.family_id
                )
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.id == row.id)
                    .values(revoked_at=func.now(), replaced_by=successor)
                )
                return pair
        # Outside the block, so the family's revocation commits before we refuse.
        raise InvalidRefreshToken(
            "The refresh token was already used; every token of its session is now revoked."
        )

    async def logout(self, token: str) -> None:
        """End the session the token belongs to. Unknown tokens are ignored (RFC 7009)."""
        async with self.engine.begin() as conn:
            family = (
                await conn.execute(
                    select(refresh_tokens.c.family_id).where(
                        refresh_tokens.c.token_hash == refresh_token_hash(token)
                    )
                )
            ).scalar_one_or_none()
            if family is not None:
                await self._revoke_family(conn, family)

    async def delete_account(self, user_id: UUID, password: str, client_ip: str) -> None:
        """Delete the account, its sessions, and tell the other modules: the row and the
        `user_deleted` event commit together."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.email, users.c.email_key, users.c.password_hash).where(
                        users.c.id == user_id
                    )
                )
            ).one_or_none()
        if row is None:
            raise InvalidCredentials
        # The same windows as login: a stolen access token is no way around them.
        with self.passwords.slot(client_key(client_ip)) as slot:  # as in login
            async with self.throttle.attempt(
                row.email_key or email_key(row.email), client_ip
            ) as attempt:
                valid, _ = await self.passwords.verify(password, row.password_hash, slot=slot)
                if not valid:
                    raise InvalidCredentials
                await attempt.succeeded()
        async with self.engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(ROLES_LOCK)))
            await conn.execute(delete(users).where(users.c.id == user_id))
            await keep_an_admin(conn)  # raises LastAdmin: an instance never loses its last
            await end_sessions(conn, user_id)  # its tokens and keys stop everywhere
            await write_outbox(conn, [UserDeleted(user_id=user_id)])

    async def change_password(
        self,
        user_id: UUID,
        current: str,
        new: str,
        client_ip: str,
        refresh_token: str | None = None,
    ) -> TokenPair:
        """Check the current password (the login's throttle and hash slot: a stolen access
        token is no way around them), store the new one, end every other session, and
        return a new pair. With `refresh_token` (one of the caller's live ones), the new
        pair continues that session, rotated as by a refresh; without, a new one begins and
        every earlier session ends."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.email, users.c.email_key, users.c.password_hash).where(
                        users.c.id == user_id, users.c.is_active
                    )
                )
            ).one_or_none()
        if row is None:
            raise AccountDisabled
        with self.passwords.slot(client_key(client_ip)) as slot:
            async with self.throttle.attempt(
                row.email_key or email_key(row.email), client_ip
            ) as attempt:
                valid, _ = await self.passwords.verify(current, row.password_hash, slot=slot)
                if not valid:
                    raise InvalidCredentials
                await attempt.succeeded()
        with self.passwords.slot(client_key(client_ip)) as slot:
            new_hash = await self.passwords.hash(new, slot=slot)
        async with self.engine.begin() as conn:
            # The account's row before any token's, in the order refresh takes them.
            await conn.execute(
                select(users.c.id).where(users.c.id == user_id).with_for_update(key_share=True)
            )
            kept = None
            if refresh_token is not None:
                kept = (
                    await conn.execute(
                        select(refresh_tokens.c.id, refresh_tokens.c.family_id)
                        .where(
                            refresh_tokens.c.token_hash == refresh_token_hash(refresh_token),
                            refresh_tokens.c.user_id == user_id,
                            refresh_tokens.c.revoked_at.is_(None),
                            refresh_tokens.c.expires_at > func.now(),
                        )
                        .with_for_update()
                    )
                ).one_or_none()
                if kept is None:
                    raise InvalidRefreshToken("It is not a live refresh token of this account.")
            family = kept.family_id if kept is not None else None
            await store_password(conn, user_id, new_hash, keep_family=family)
            # Disabled, demoted or deleted since the check: what the row says now.
            if (role := await active_role(conn, user_id)) is None:
                raise AccountDisabled
            pair, successor = await self._issue(
                conn, user_id, role, family_id=family or uuid.uuid4()
            )
            if kept is not None:
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.id == kept.id)
                    .values(revoked_at=func.now(), replaced_by=successor)
                )
            return pair

    async def user(self, user_id: UUID) -> User | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id))
            ).one_or_none()
        return _user(row) if row else None

    async def purge_refresh_tokens(self) -> int:
        """Delete refresh-token rows nothing needs any more; returns how many.

        - Expired rows, whatever their state: an expired token is refused either way. A
          rotated token is kept until then, because presenting it again is how reuse is
          detected (and the whole session revoked).
        - Rows of an ended session (no token of its family is still usable: logged out,
          or revoked for reuse), each once it has been revoked for ENDED_SESSION_GRACE.
        In batches, so no purge holds many row locks for long.
        """
        live = refresh_tokens.alias("live")
        session_alive = exists().where(
            live.c.family_id == refresh_tokens.c.family_id,
            live.c.revoked_at.is_(None),
            live.c.expires_at > func.now(),
        )
        purgeable = or_(
            refresh_tokens.c.expires_at <= func.now(),
            and_(
                refresh_tokens.c.revoked_at <= func.now() - ENDED_SESSION_GRACE,
                ~session_alive,
            ),
        )
        batch = select(refresh_tokens.c.id).where(purgeable).limit(_PURGE_BATCH)
        total = 0
        while True:
            async with self.engine.begin() as conn:
                deleted = (
                    await conn.execute(
                        delete(refresh_tokens).where(
                            refresh_tokens.c.id.in_(batch.scalar_subquery())
                        )
                    )
                ).rowcount
            total += deleted
            if deleted < _PURGE_BATCH:
                return total

    # helpers

    async def _empty(self) -> bool:
        async with self.engine.connect() as conn:
            return not (await conn.execute(select(exists(select(users.c.id))))).scalar_one()

    async def _issue(
        self, conn: AsyncConnection, user_id: UUID, role: str, family_id: UUID
    ) -> tuple[TokenPair, UUID]:
        """A new access token and refresh token; returns the pair and the refresh row's id."""
        refresh = new_refresh_token()
        token_id = uuid.uuid4()
        await conn.execute(
            insert(refresh_tokens).values(
                id=token_id,
                user_id=user_id,
                family_id=family_id,
                token_hash=refresh_token_hash(refresh),
                expires_at=func.now() + self.refresh_ttl,
            )
        )
        pair = TokenPair(
            access_token=self.access_tokens.issue(user_id, role),
            refresh_token=refresh,
            expires_in=self.access_tokens.ttl_seconds,
        )
        return pair, token_id

    @staticmethod
    async def _revoke_family(conn: AsyncConnection, family_id: UUID) -> None:
        await conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )


async def _just_rotated(conn: AsyncConnection, row: Row[Any], grace_seconds: float) -> bool:
    """The token was rotated less than `grace_seconds` ago, by a request of the same
    browser, and its session still lives (a sign-out or a password change ends that)."""
    if grace_seconds <= 0 or row.expires_at <= datetime.now(UTC):
        return False
    live = (
        select(refresh_tokens.c.id)
        .where(refresh_tokens.c.family_id == row.family_id, refresh_tokens.c.revoked_at.is_(None))
        .exists()
    )
    recent = (
        select(refresh_tokens.c.id)
        .where(
            refresh_tokens.c.id == row.id,
            refresh_tokens.c.revoked_at > func.now() - timedelta(seconds=grace_seconds),
        )
        .exists()
    )
    return bool(await conn.scalar(select(and_(recent, live))))
