"""Issuing tokens: short-lived EdDSA access JWTs and opaque, rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.kernel.settings import TokenSettings
from app.kernel.tokens import ALGORITHM, key_id


class AccessTokenIssuer:
    def __init__(self, key: Ed25519PrivateKey, settings: TokenSettings, ttl_seconds: int) -> None:
        self._key = key
        self._kid = key_id(key.public_key())
        self._settings = settings
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: UUID, role: str) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            # To the microsecond, not RFC 7519's usual whole second: a token issued just
            # after a password change must not look older than the change.
            "iat": now.timestamp(),
            "role": role,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})


def new_refresh_token() -> str:
    """256 random bits, URL-safe. Only its hash is stored."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
