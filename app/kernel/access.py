"""Who may call a module: access tokens and API keys, checked against the module's own
copy of auth's access list.

Auth publishes what every module needs to decide without calling it (an account disabled,
its role, the moment its earlier tokens stopped counting, the hashes of its API keys);
each module keeps that in two tables of its own database (`access_tables`), and its `Gate`
reads them on each authenticated request. Auth writes the same tables in its own database
as it changes them, so its Gate works the same way.

An API key is `enc_`, 40 random base62 characters and a 6-character checksum of them: a
key found in a log or a repository is recognisable, and a mistyped one is refused before
any lookup. Only its SHA-256 is stored or published: 238 random bits need no slow hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request

from app.kernel.logs import note_account
from app.kernel.problems import Problem
from app.kernel.session import SAFE_METHODS, SESSION_COOKIE, same_origin
from app.kernel.tokens import InvalidToken, Principal, TokenVerifier, bearer_token, unauthorized

Scope = Literal["links:read", "links:write", "stats:read", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
API_KEY_PREFIX = "enc_"
_ALPHABET = string.digits + string.ascii_letters
_RANDOM_LENGTH = 40
_CHECKSUM_LENGTH = 6
_KEY_PATTERN = re.compile(rf"{API_KEY_PREFIX}[0-9A-Za-z]{{{_RANDOM_LENGTH + _CHECKSUM_LENGTH}}}")
# `last_used_at` is written at most this often per key and module: a busy key costs one
# small write a minute, not one per request.
_LAST_USED_STEP = timedelta(minutes=1)

# Told, in the admitting transaction, when a key's `last_used_at` moves: (conn, key id,
# owner id, when).
KeyUse = Callable[[AsyncConnection, UUID, UUID, datetime], Awaitable[None]]


def access_tables(metadata: MetaData) -> tuple[Table, Table]:
    """`access_accounts` and `access_keys`, placed in every module's database."""
    accounts = Table(
        "access_accounts",
        metadata,
        Column("user_id", Uuid, primary_key=True),
        Column("active", Boolean, nullable=False),
        Column("role", Text, nullable=False),
        # Access tokens issued before this are refused (a password change, a disabling).
        Column("tokens_after", DateTime(timezone=True), nullable=False),
        # When auth made this state: an older state arriving late changes nothing.
        Column("changed_at", DateTime(timezone=True), nullable=False),
    )
    keys = Table(
        "access_keys",
        metadata,
        Column("key_id", Uuid, primary_key=True),
        Column("key_hash", LargeBinary(32), nullable=False),
        Column("user_id", Uuid, nullable=False),
        Column("role", Text, nullable=False),
        Column("scopes", ARRAY(Text), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        # Kept (not deleted) when revoked, so an issue arriving after its revocation
        # cannot bring the key back.
        Column("revoked", Boolean, nullable=False),
        Column("last_used_at", DateTime(timezone=True)),
        Index("access_keys_hash", "key_hash", unique=True),
        CheckConstraint("role IN ('admin', 'user')", name="access_keys_role"),
    )
    return accounts, keys


def _checksum(random_part: str) -> str:
    value = zlib.crc32(random_part.encode())
    digits = []
    for _ in range(_CHECKSUM_LENGTH):
        value, digit = divmod(value, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def new_api_key() -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return API_KEY_PREFIX + random_part + _checksum(random_part)


def is_api_key(text: str) -> bool:
    """Shaped like a key and its checksum right: worth a lookup."""
    if not _KEY_PATTERN.fullmatch(text):
        return False
    body = text[len(API_KEY_PREFIX) :]
    return _checksum(body[:_RANDOM_LENGTH]) == body[_RANDOM_LENGTH:]


def api_key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class AccessList:
    """Writes to a module's copy of the access list, from auth's events (or, in auth, as
    its own changes commit). Each write is idempotent and order-proof."""

    def __init__(self) -> None:
        self.accounts, self.keys = access_tables(MetaData())

    async def account_changed(
        self,
        conn: AsyncConnection,
        *,
        user_id: UUID,
        active: bool,
        role: str,
        tokens_after: datetime,
        changed_at: datetime,
    ) -> None:
        statement = insert(self.accounts).values(
            user_id=user_id,
            active=active,
            role=role,
            tokens_after=tokens_after,
            changed_at=changed_at,
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"],
                set_={
                    name: statement.excluded[name]
                    for name in ("active", "role", "tokens_after", "changed_at")
                },
                where=self.accounts.c.changed_at <= statement.excluded.changed_at,
            )
        )

    async def key_issued(
        self,
        conn: AsyncConnection,
        *,
        key_id: UUID,
        key_hash: bytes,
        user_id: UUID,
        role: str,
        scopes: Sequence[str],
        expires_at: datetime | None,
    ) -> None:
        await conn.execute(
            insert(self.keys)
            .values(
                key_id=key_id,
                key_hash=key_hash,
                user_id=user_id,
                role=role,
                scopes=list(scopes),
                expires_at=expires_at,
                revoked=False,
            )
            .on_conflict_do_nothing()
        )

    async def key_used(self, conn: AsyncConnection, *, key_id: UUID, used_at: datetime) -> None:
        keys = self.keys
        await conn.execute(
            update(keys)
            .where(
                keys.c.key_id == key_id,
                or_(keys.c.last_used_at.is_(None), keys.c.last_used_at < used_at),
            )
            .values(last_used_at=used_at)
        )

    async def key_revoked(
        self, conn: AsyncConnection, *, key_id: UUID, key_hash: bytes, user_id: UUID
    ) -> None:
        statement = insert(self.keys).values(
            key_id=key_id, key_hash=key_hash, user_id=user_id, role="user", scopes=[], revoked=True
        )
        await conn.execute(
            statement.on_conflict_do_update(index_elements=["key_id"], set_={"revoked": True})
        )


class Gate:
    """Authenticates a request to one module: an access token (verified with auth's public
    key; from `Authorization: Bearer`, or in a browser the session cookie) or an API key
    (`X-Api-Key`, or `Authorization: Bearer enc_...`), then admitted by the module's access
    list. A header wins over the cookie, so an API client's behaviour never depends on it.
    One small indexed read per authenticated request; nothing is cached, so a revocation
    holds in every replica as soon as its event is applied."""

    def __init__(self, verifier: TokenVerifier, engine: AsyncEngine) -> None:
        self.verifier = verifier
        self._engine = engine
        self._list = AccessList()
        self.on_key_use: KeyUse | None = None

    async def authenticate(self, request: Request, scope: str | None = None) -> Principal:
        """The caller, or a 401 problem; a 403 naming `scope` when a key lacks it."""
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip().startswith(API_KEY_PREFIX):
                key = credentials.strip()
        cookie = request.cookies.get(SESSION_COOKIE)
        if key is not None:
            principal = await self._key(key.strip())
        elif cookie and "authorization" not in request.headers:
            principal = await self._token(await self._session(request, cookie))
        else:
            bearer_token(request)  # the 401 for a missing token, before any other work
            principal = await self._token(await self.verifier.authenticate(request))
        if scope is not None:
            principal.require(scope)
        note_account(request.scope, principal.user_id)
        return principal

    async def authenticate_key(self, key: str, scope: str | None = None) -> Principal:
        """The owner of an API key given other than in a header (the YOURLS API's
        `signature` parameter), checked like `X-Api-Key`: a 401 or 403 problem otherwise."""
        principal = await self._key(key.strip())
        if scope is not None:
            principal.require(scope)
        return principal

    async def _session(self, request: Request, token: str) -> Principal:
        if request.method not in SAFE_METHODS and not same_origin(request):
            # A form or script of another site, riding the user's cookie (CSRF).
            raise Problem(
                403,
                "A change made with the session cookie must come from this site's own pages.",
                slug="cross-origin",
            )
        try:
            return await self.verifier.verify_or_refresh(token)
        except InvalidToken as exc:
            raise unauthorized(str(exc), error="invalid_token") from exc

    async def _token(self, principal: Principal) -> Principal:
        accounts = self._list.accounts
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(accounts.c.active, accounts.c.role, accounts.c.tokens_after).where(
                        accounts.c.user_id == principal.user_id
                    )
                )
            ).one_or_none()
        if row is None:  # nothing ever changed for this account: the token's word holds
            return principal
        if not row.active:
            raise unauthorized("The account of this token is disabled.", error="invalid_token")
        if principal.issued_at < row.tokens_after.timestamp():
            raise unauthorized(
                "This token's session has ended (the password was changed); log in again.",
                error="invalid_token",
            )
        return Principal(
            user_id=principal.user_id,
            token_id=principal.token_id,
            role="admin" if row.role == "admin" else "user",  # a role taken away counts now
            issued_at=principal.issued_at,
        )

    async def _key(self, key: str) -> Principal:
        if not is_api_key(key):
            raise unauthorized("The API key is not valid.", error="invalid_token")
        keys, accounts = self._list.keys, self._list.accounts
        now = func.now()
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        keys.c.key_id,
                        keys.c.user_id,
                        keys.c.role,
                        keys.c.scopes,
                        keys.c.last_used_at,
                        accounts.c.role.label("account_role"),
                    )
                    .select_from(keys.outerjoin(accounts, accounts.c.user_id == keys.c.user_id))
                    .where(
                        keys.c.key_hash == api_key_hash(key),
                        ~keys.c.revoked,
                        or_(keys.c.expires_at.is_(None), keys.c.expires_at > now),
                        or_(accounts.c.active.is_(None), accounts.c.active),
                    )
                )
            ).one_or_none()
            if row is None:
                raise unauthorized(
                    "The API key is not valid: unknown, revoked or expired.",
                    error="invalid_token",
                )
            used_at = datetime.now(UTC)
            if row.last_used_at is None or row.last_used_at < used_at - _LAST_USED_STEP:
                await self._list.key_used(conn, key_id=row.key_id, used_at=used_at)
                if self.on_key_use is not None:
                    await self.on_key_use(conn, row.key_id, row.user_id, used_at)
        admin = row.role == "admin" and row.account_role in (None, "admin")
        return Principal(
            user_id=row.user_id,
            token_id=str(row.key_id),
            role="admin" if admin else "user",
            scopes=frozenset(row.scopes),
        )
