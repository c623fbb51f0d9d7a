"""The auth module: users, passwords, access tokens and refresh tokens.

Its public face is this file: `AuthSettings`, `load_signing_key` (the composition root
derives every module's token verifier from its public half) and `create_module`. Nothing
else in the package is imported from outside it.
"""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.contracts.auth import UserDeleted
from app.kernel.module import Module, ModuleContext
from app.kernel.settings import TokenSettings
from app.kernel.tokens import public_jwk
from app.modules.auth.keys import SigningKeyError, load_signing_key
from app.modules.auth.passwords import Passwords
from app.modules.auth.purge import PeriodicPurge
from app.modules.auth.routes import build_routes
from app.modules.auth.schemas import Jwks
from app.modules.auth.service import AuthService
from app.modules.auth.settings import AuthSettings
from app.modules.auth.tables import metadata
from app.modules.auth.throttle import LoginThrottle, RegistrationThrottle
from app.modules.auth.tokens import AccessTokenIssuer

__all__ = ["AuthSettings", "SigningKeyError", "create_module", "load_signing_key"]

NAME = "auth"


def create_module(
    settings: AuthSettings,
    tokens: TokenSettings,
    signing_key: Ed25519PrivateKey,
    context: ModuleContext,
) -> Module:
    passwords = Passwords(settings.argon2)
    service = AuthService(
        engine=context.engine,
        passwords=passwords,
        access_tokens=AccessTokenIssuer(signing_key, tokens, settings.access_token_ttl_seconds),
        throttle=LoginThrottle(settings.throttle),
        registrations=RegistrationThrottle(settings.throttle),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    purge = PeriodicPurge(service.purge_refresh_tokens, settings.refresh_token_purge_seconds)
    jwks = Jwks(keys=[public_jwk(signing_key.public_key())])
    return Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=build_routes(service, jwks, settings.trusted_proxies),
        on_startup=[purge.start],
        on_shutdown=[purge.stop, passwords.close],
        publishes=[UserDeleted],
    )
