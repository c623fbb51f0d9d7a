"""The composition root: builds the Starlette app from the enabled modules.

Only this file and `app/cli.py` know the list of modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.config import Settings
from app.kernel.database import create_engine
from app.kernel.health import health_routes
from app.kernel.module import Module, ModuleContext
from app.kernel.openapi import openapi_document
from app.kernel.problems import EXCEPTION_HANDLERS
from app.kernel.tokens import TokenVerifier
from app.modules import analytics, auth, shortener

VERSION = "0.1.0"


class ConfigurationError(RuntimeError):
    """The settings cannot make an app; the message names the setting."""


def build_modules(
    settings: Settings,
    database_urls: Mapping[str, str],
    signing_key: Ed25519PrivateKey | None = None,
) -> tuple[list[Module], TokenVerifier]:
    signing_key = signing_key or auth.load_signing_key(settings.auth, settings.data_dir)
    verifier = TokenVerifier([signing_key.public_key()], settings.tokens)

    def context(name: str) -> ModuleContext:
        url = database_urls.get(name) or settings.configured_url(name)
        if not url:
            raise ConfigurationError(
                f"the {name} module has no database: set ENCURTA_{name.upper()}__DATABASE_URL "
                "or let `encurta serve` start the embedded PostgreSQL"
            )
        return ModuleContext(
            engine=create_engine(url, settings.database(name)), verifier=verifier
        )

    built: list[Module] = []
    if "auth" in settings.modules:
        built.append(
            auth.create_module(settings.auth, settings.tokens, signing_key, context("auth"))
        )
    if "shortener" in settings.modules:
        built.append(shortener.create_module(settings.shortener, context("shortener")))
    if "analytics" in settings.modules:
        built.append(analytics.create_module(settings.analytics, context("analytics")))
    return built, verifier


def all_routes(modules: list[Module]) -> list[BaseRoute]:
    routes = health_routes({module.name: module.engine for module in modules})
    for module in modules:
        routes.extend(module.routes)
    return routes


def openapi(modules: list[Module]) -> dict[str, Any]:
    return openapi_document(all_routes(modules), title="encurta", version=VERSION)


def create_app(settings: Settings, database_urls: Mapping[str, str] | None = None) -> Starlette:
    modules, verifier = build_modules(settings, database_urls or {})
    document = openapi(modules)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Module] = []
        try:
            for module in modules:
                for hook in module.on_startup:
                    await hook()
                started.append(module)
            yield
        finally:
            for module in reversed(started):
                for hook in module.on_shutdown:
                    await hook()
            for module in modules:
                await module.engine.dispose()

    app = Starlette(
        routes=[*all_routes(modules), Route("/openapi.json", openapi_json)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.modules = modules
    app.state.token_verifier = verifier
    return app
