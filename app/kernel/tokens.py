"""Access-token verification with auth's public key alone.

Every module verifies a Bearer token here without calling auth: the token is an EdDSA
(Ed25519) JWT, and the accepted algorithm is fixed in code, so a token cannot pick its own
(`alg: none`, or an HMAC keyed with the public key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from starlette.requests import Request

from app.kernel.problems import Problem
from app.kernel.settings import TokenSettings

ALGORITHM = "EdDSA"
_REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud", "jti"]

KeyFetcher = Callable[[], Awaitable[list[Ed25519PublicKey]]]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key as a JWK (RFC 8037), with its RFC 7638 thumbprint as `kid`."""
    x = _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def key_id(key: Ed25519PublicKey) -> str:
    return public_jwk(key)["kid"]


def jwks_fetcher(url: str, timeout: float = 5.0) -> KeyFetcher:
    """Reads auth's `/.well-known/jwks.json`; keys other than Ed25519 are ignored."""

    async def fetch() -> list[Ed25519PublicKey]:
        import httpx

        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
        keys = []
        for jwk in response.json().get("keys", []):
            try:
                keys.append(public_key_from_jwk(jwk))
            except ValueError:
                continue
        return keys

    return fetch


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
        raise ValueError("only Ed25519 (OKP) keys are accepted")
    raw = base64.urlsafe_b64decode(str(jwk["x"]) + "=" * (-len(str(jwk["x"])) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


Role = Literal["admin", "user"]


@dataclass(frozen=True)
class Principal:
    """Who a verified access token (or API key) speaks for."""

    user_id: UUID
    token_id: str
    role: Role = "user"
    issued_at: float = 0.0  # seconds since the epoch
    # What the caller may do: None for a session (everything its role allows), an API
    # key's scopes otherwise.
    scopes: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and (self.scopes is None or "admin" in self.scopes)

    def require(self, scope: str) -> None:
        """A 403 problem naming `scope` when an API key lacks it."""
        if self.scopes is not None and scope not in self.scopes:
            raise Problem(
                403,
                f"This API key lacks the scope '{scope}'.",
                slug="missing-scope",
            )

    def require_session(self) -> None:
        """A 403 problem for an API key: what only the account's owner may do (manage
        keys, change the password, delete the account) needs a login."""
        if self.scopes is not None:
            raise Problem(
                403,
                "An API key cannot do this: log in and use the access token.",
                slug="needs-session",
            )

    def require_admin(self) -> None:
        """A 403 problem unless the caller is an admin (and, for a key, has `admin`)."""
        self.require("admin")
        if self.role != "admin":
            raise Problem(403, "Only an admin of this instance may do this.", slug="not-admin")


class InvalidToken(Exception):
    """The token is not one we accept; the message is safe to show."""


class UnknownKey(InvalidToken):
    """Signed with a key we do not (yet) know."""


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience and lifetime; knows keys by `kid`.

    With a `fetch` (auth's JWKS), a token naming an unknown key triggers one fetch, at
    most every `jwks_refetch_seconds`, so a rotated key is picked up without a restart.
    """

    def __init__(
        self,
        keys: Iterable[Ed25519PublicKey],
        settings: TokenSettings,
        fetch: KeyFetcher | None = None,
    ) -> None:
        self._trusted = {key_id(key): key for key in keys}
        self._keys = dict(self._trusted)
        self._settings = settings
        self._fetch = fetch
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    def fetch_from(self, fetch: KeyFetcher) -> None:
        """Take keys from `fetch` (auth's JWKS), at start and when a token names a new one."""
        self._fetch = fetch

    def trust(self, keys: Iterable[Ed25519PublicKey]) -> None:
        """Accept tokens signed by these keys too (a token-signing module in this process)."""
        self._trusted.update((key_id(key), key) for key in keys)
        self._keys.update(self._trusted)

    @property
    def can_verify(self) -> bool:
        """Whether any token could ever pass: a key is known, or can be fetched."""
        return bool(self._keys) or self._fetch is not None

    async def refresh(self) -> None:
        """Fetch the keys again (no-op without a fetcher); trusted keys stay."""
        if self._fetch is None:
            return
        async with self._lock:
            self._fetched_at = time.monotonic()
            fetched = {key_id(key): key for key in await self._fetch()}
            self._keys = fetched | self._trusted

    async def verify_or_refresh(self, token: str) -> Principal:
        try:
            return self.verify(token)
        except UnknownKey:
            due = time.monotonic() - self._fetched_at >= self._settings.jwks_refetch_seconds
            if self._fetch is None or not due:
                raise
        try:
            await self.refresh()
        except Exception as exc:  # auth unreachable: the token cannot be checked now
            raise InvalidToken("The access token's key cannot be fetched right now.") from exc
        return self.verify(token)

    async def authenticate(self, request: Request) -> Principal:
        """The caller's identity from the Bearer token, or a 401 problem."""
        try:
            return await self.verify_or_refresh(bearer_token(request))
        except InvalidToken as exc:
            raise unauthorized(str(exc), error="invalid_token") from exc

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(key) for key in self._keys.values()]}

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("The access token is not signed with EdDSA.")
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise UnknownKey("The access token is signed with an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS},
            )
            return Principal(
                user_id=UUID(str(claims["sub"])),
                token_id=str(claims["jti"]),
                role="admin" if claims.get("role") == "admin" else "user",
                issued_at=float(claims["iat"]),
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The access token has expired.") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(f"The access token is not valid: {exc}.") from exc


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send an access token as 'Authorization: Bearer <token>'.")
    return token.strip()


def unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = 'Bearer realm="encurta"' + (f', error="{error}"' if error else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})
