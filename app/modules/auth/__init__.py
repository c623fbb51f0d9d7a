"""The auth module: users, passwords, access tokens and refresh tokens.

Its public face is this file: `MODULE`, which the registry lists. `create_module` loads
(or generates, at first start) the Ed25519 signing key and offers its public half as the
module's `public_keys`, from which every module in the process verifies access tokens.
`MODULE.commands` adds `encurta users` (commands.py); `MODULE.find_account` finds whose
rows `encurta import|export --owner EMAIL` are about (the composition root asks it).
Nothing else in the package is imported from outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncConnection

from app.contracts.access import ApiKeyUsed
from app.contracts.auth import AccessChanged, ApiKeyIssued, ApiKeyRevoked, UserDeleted
from app.kernel.access import AccessList
from app.kernel.limits import Limit, make_store
from app.kernel.tokens import public_jwk
from app.modules.auth.account_pages import build_account_page_routes
from app.modules.auth.admin import Accounts, build_admin_routes
from app.modules.auth.admin_pages import build_admin_page_routes
from app.modules.auth.api_keys import ApiKeys, build_key_routes
from app.modules.auth.commands import USERS
from app.modules.auth.key_pages import build_key_page_routes
from app.modules.auth.keys import load_signing_key
from app.modules.auth.owners import find_owner
from app.modules.auth.pages import build_page_routes
from app.modules.auth.passwords import Passwords
from app.modules.auth.provisioning import build_provisioning_routes
from app.modules.auth.purge import PeriodicPurge
from app.modules.auth.routes import build_routes
from app.modules.auth.schemas import Jwks
from app.modules.auth.service import AuthService
from app.modules.auth.settings import AuthSettings
from app.modules.auth.shared_throttle import Guard, SharedThrottle
from app.modules.auth.tables import metadata
from app.modules.auth.throttle import LoginThrottle, RegistrationThrottle
from app.modules.auth.tokens import AccessTokenIssuer
from app.wiring import Module, ModuleContext, ModuleSpec

__all__ = ["MODULE", "AuthSettings"]

NAME = "auth"


def create_module(settings: AuthSettings, context: ModuleContext) -> Module:
    signing_key = (
        Ed25519PrivateKey.generate()
        if context.describing
        else load_signing_key(settings, context.data_dir)
    )
    passwords = Passwords(settings.argon2)
    store = make_store(context.limits, context.engine)
    service = AuthService(
        engine=context.engine,
        passwords=passwords,
        access_tokens=AccessTokenIssuer(
            signing_key, context.tokens, settings.access_token_ttl_seconds
        ),
        throttle=Guard(
            LoginThrottle(settings.throttle),
            RegistrationThrottle(settings.throttle),
            # With the postgres store, counts shared by replicas too (None: memory only).
            SharedThrottle(store, settings.throttle)
            if context.limits.store == "postgres"
            else None,
        ),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        registration=settings.registration,
    )
    purge = PeriodicPurge(service.purge_refresh_tokens, settings.refresh_token_purge_seconds)
    jwks = Jwks(keys=[public_jwk(signing_key.public_key())])
    access = AccessList()
    limits = settings.limits
    key_limit = Limit(store, "api-keys-per-user", limits.api_keys_per_user, limits.window_seconds)
    module = Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=[
            *build_routes(service, context.gate, jwks, settings.trusted_proxies),
            *build_page_routes(
                service, settings.refresh_token_ttl_seconds, settings.trusted_proxies
            ),
            *build_admin_routes(Accounts(context.engine), context.gate),
            *build_key_routes(ApiKeys(context.engine, access, key_limit), context.gate),
            *build_key_page_routes(ApiKeys(context.engine, access, key_limit), context.gate),
            *build_provisioning_routes(
                context.engine, passwords, context.gate, settings.trusted_proxies
            ),
            *build_account_page_routes(
                service,
                context.gate,
                settings.refresh_token_ttl_seconds,
                settings.trusted_proxies,
            ),
            *build_admin_page_routes(
                context.engine,
                passwords,
                context.gate,
                settings.registration,
                settings.trusted_proxies,
            ),
        ],
        on_startup=[purge.start],
        on_shutdown=[purge.stop, passwords.close],
        publishes=[UserDeleted, AccessChanged, ApiKeyIssued, ApiKeyRevoked],
        public_keys=[signing_key.public_key()],
    )

    async def key_used(conn: AsyncConnection, events: Sequence[ApiKeyUsed]) -> None:
        """Another module admitted a key: its owner's list shows the latest use."""
        for event in events:
            await access.key_used(conn, key_id=event.key_id, used_at=event.used_at)

    # Uses on auth's own routes are written by its gate; only the others' arrive here.
    module.subscribe(ApiKeyUsed, key_used, deduplicates=True)
    return module


MODULE = ModuleSpec(
    name=NAME,
    settings=AuthSettings,
    create=create_module,
    commands=[USERS],
    find_account=find_owner,
)
