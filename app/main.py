"""The composition root: builds the Starlette app from the enabled modules.

Only this file and `app/cli.py` know the list of modules. Here each producing module gets
an outbox relay and each consuming module an inbox consumer, all on one bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from app.bus.broadcast import Broadcast
from app.bus.handoff import HandOff
from app.bus.inbox import Consumer
from app.bus.inprocess import InProcessBus
from app.bus.metrics import BusMetrics
from app.bus.protocol import Bus
from app.bus.relay import OutboxRelay
from app.bus.retention import INBOX_TTL_SETTING, bus_rules, replay_horizon
from app.bus.settings import UnsafeKafkaSettings
from app.config import Settings
from app.kernel.access import Gate
from app.kernel.database import create_engine
from app.kernel.front import FrontedStarlette
from app.kernel.health import health_routes
from app.kernel.metrics import Metrics, RequestMetrics, metrics_route
from app.kernel.openapi import openapi_document
from app.kernel.problems import EXCEPTION_HANDLERS
from app.kernel.request_log import RequestLog
from app.kernel.retention import Retention, RetentionError, RetentionJob, check_horizon
from app.kernel.settings import TokenSettings
from app.kernel.tokens import TokenVerifier, jwks_fetcher, load_public_key
from app.kernel.web import static_routes
from app.kernel.web.docs import Tag, docs_page
from app.kernel.web.docs import reference as api_reference
from app.registry import MODULES, NAMES
from app.wiring import Module, ModuleConfigurationError, ModuleContext

VERSION = "0.1.0"
_FINAL_DRAIN_SECONDS = 5.0

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The settings cannot make an app; the message names the setting."""


@dataclass
class Runtime:
    """Everything the composition root built: the modules and the event plumbing."""

    modules: list[Module]
    verifier: TokenVerifier
    bus: Bus
    relays: list[OutboxRelay]
    consumers: list[Consumer]
    broadcasts: list[Broadcast]
    retention: list[RetentionJob] = field(default_factory=list)
    metrics: Metrics | None = None  # with ENCURTA_METRICS__TOKEN set

    async def start(self) -> None:
        for consumer in self.consumers:
            self.bus.subscribe(consumer)
            await consumer.start()
        for broadcast in self.broadcasts:
            self.bus.subscribe(broadcast)
        await self.bus.start()
        with contextlib.suppress(Exception):  # auth may start later: fetched on first use
            await self.verifier.refresh()
        for module in self.modules:
            for hook in module.on_startup:
                await hook()
        for relay in self.relays:
            await relay.start()
        for job in self.retention:
            await job.start()

    async def stop(self) -> None:
        for job in self.retention:
            await job.stop()
        for module in reversed(self.modules):
            for hook in module.on_shutdown:
                await hook()  # e.g. the click batcher commits what it holds
        for relay in self.relays:
            await relay.stop()
            # Best effort: what is not sent now is sent at the next start.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_FINAL_DRAIN_SECONDS):
                    await relay.drain()
        for consumer in self.consumers:
            await consumer.stop()
        await self.bus.stop()
        for module in self.modules:
            await module.engine.dispose()


def _trust(verifier: TokenVerifier, modules: list[Module], tokens: TokenSettings) -> None:
    """One source of keys, the first there is: the keys of a module here that signs tokens
    (auth), else the public key file, else auth's JWKS. Never several: a key file left
    behind, or another deployment's JWKS, must not make its tokens good here too."""
    own = [key for module in modules for key in module.public_keys]
    if own:
        verifier.trust(own)
    elif tokens.public_key_file is not None:
        try:
            verifier.trust([load_public_key(tokens.public_key_file)])
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"ENCURTA_TOKENS__PUBLIC_KEY_FILE: {exc}") from None
    elif tokens.jwks_url:
        verifier.fetch_from(jwks_fetcher(tokens.jwks_url))


def _bus(settings: Settings) -> Bus:
    if settings.bus.transport == "kafka":
        try:
            settings.bus.kafka.check_safe()
            from app.bus.kafka import KafkaBus
        except UnsafeKafkaSettings as exc:
            raise ConfigurationError(str(exc)) from None
        except ImportError as exc:
            raise ConfigurationError(
                f"ENCURTA_BUS__TRANSPORT=kafka needs aiokafka ({exc.name} is missing): "
                "install encurta[kafka]"
            ) from None
        return KafkaBus(settings.bus.kafka, settings.bus)
    return InProcessBus()


def retention_rules(settings: Settings, module: Module) -> list[Retention]:
    """Every retention rule of a module's database: the bus's, for the outbox and inbox
    tables it has, then the module's own. Refused (naming the setting) when a rule would
    forget rows that a redelivered event still needs."""
    rules = [*bus_rules(settings.bus, module.metadata.tables), *module.retention]
    try:
        check_horizon(rules, replay_horizon(settings.bus), INBOX_TTL_SETTING)
    except RetentionError as exc:
        raise ConfigurationError(str(exc)) from None
    return rules


def build_runtime(
    settings: Settings, database_urls: Mapping[str, str], *, describing: bool = False
) -> Runtime:
    """Builds every enabled module, in the registry's order, and the plumbing between them.

    `describing`: built only to be described (`encurta openapi`, `encurta modules`): no key
    or secret is loaded or generated, no key source is read, and the bus is in-process.
    """
    # First: a transport that cannot be had refuses the start before any key is made.
    bus = InProcessBus() if describing else _bus(settings)
    verifier = TokenVerifier([], settings.tokens)
    handoffs = {spec.name: HandOff(settings.bus.handoff_limit) for spec in MODULES}
    token = settings.metrics.token
    metrics = Metrics(token) if token is not None and not describing else None
    # Without metrics the series are still recorded, on a registry nobody reads.
    registry = metrics.registry if metrics is not None else CollectorRegistry()
    bus_metrics = BusMetrics(registry)

    def context(name: str) -> ModuleContext:
        url = database_urls.get(name) or settings.configured_url(name)
        if not url:
            raise ConfigurationError(
                f"the {name} module has no database: set ENCURTA_{name.upper()}__DATABASE_URL "
                "or let `encurta serve` start the embedded PostgreSQL"
            )
        engine = create_engine(url, settings.database(name))
        return ModuleContext(
            engine=engine,
            gate=Gate(verifier, engine),
            tokens=settings.tokens,
            data_dir=settings.data_dir,
            handoff=handoffs[name],
            limits=settings.limits,
            describing=describing,
            metrics=registry,
        )

    specs = [spec for spec in MODULES if spec.name in settings.modules]
    # Made side by side: auth hashes a dummy password as it is made (argon2, ~0.15 s, the
    # GIL released), which overlaps with the others' work (GeoIP data...).
    with ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix="encurta-build") as pool:
        building = [
            pool.submit(spec.create, settings.section(spec), context(spec.name)) for spec in specs
        ]
        try:
            modules = [future.result() for future in building]
        except ModuleConfigurationError as exc:
            raise ConfigurationError(str(exc)) from None
    for spec, module in zip(specs, modules, strict=True):
        if module.name != spec.name:
            raise TypeError(f"app.modules.{spec.name} built a module named {module.name!r}")
    if not describing:
        _trust(verifier, modules, settings.tokens)
    retention = [
        RetentionJob(
            m.name, m.engine, retention_rules(settings, m), settings.retention_interval_seconds
        )
        for m in modules
    ]
    if metrics is not None:
        _watch(metrics, bus_metrics, modules)

    return Runtime(
        modules=modules,
        verifier=verifier,
        bus=bus,
        relays=[
            OutboxRelay(
                m.name,
                m.engine,
                bus,
                settings.bus,
                publishes=m.publishes,
                handoff=handoffs[m.name],
            )
            for m in modules
            if m.publishes
        ],
        consumers=[
            Consumer(
                m.name,
                m.engine,
                {s.event: s.handle for s in m.subscriptions},
                settings.bus,
                deduplicating=[s.event for s in m.subscriptions if s.deduplicates],
                metrics=bus_metrics,
            )
            for m in modules
            if m.subscriptions
        ],
        broadcasts=[
            Broadcast(m.name, {b.event: b.handle for b in m.broadcasts})
            for m in modules
            if m.broadcasts
        ],
        retention=retention,
        metrics=metrics,
    )


def _watch(metrics: Metrics, bus_metrics: BusMetrics, modules: list[Module]) -> None:
    """What is probed when the metrics are scraped: each module's database and pool, the
    outbox of each that publishes, the parked events of each that consumes."""
    for module in modules:
        metrics.watch_database(module.name, module.engine)
        if module.publishes:
            metrics.add_probe(bus_metrics.outbox_probe(module.name, module.engine))
        if module.subscriptions:
            metrics.add_probe(bus_metrics.parked_probe(module.name, module.engine))


def all_routes(modules: list[Module]) -> list[BaseRoute]:
    routes = health_routes({module.name: module.engine for module in modules})
    routes.extend(static_routes())
    for module in modules:
        routes.extend(module.routes)
    # Starlette takes the first match: shorter paths first, literal before parameterised,
    # so `/{code}`, the hot path, is tried after the few single-segment routes only.
    return sorted(routes, key=_specificity)


def _specificity(route: BaseRoute) -> tuple[int, bool]:
    path = str(getattr(route, "path", ""))
    return path.count("/"), "{" in path


def _front(modules: list[Module]) -> ASGIApp | None:
    """The module that answers one-segment paths ahead of the router, if one runs here."""
    fronts = [module.front for module in modules if module.front is not None]
    if len(fronts) > 1:
        raise ConfigurationError("two modules in one process answer one-segment paths")
    return fronts[0] if fronts else None


def _literal_paths(routes: list[BaseRoute]) -> list[str]:
    """The one-segment paths a route of the app has: the front door leaves them alone."""
    return [
        path
        for route in routes
        if (path := str(getattr(route, "path", ""))).count("/") == 1 and "{" not in path
    ]


def openapi(modules: list[Module]) -> dict[str, Any]:
    return openapi_document(all_routes(modules), title="encurta", version=VERSION)


def whole_api(settings: Settings, modules: list[Module]) -> dict[str, Any]:
    """The document of every module, whichever run here. Split over processes, the proxy
    sends /openapi.json and /docs to the shortener, whose own routes are a part of the
    API only: the others are built as `encurta openapi` builds them, only to be described
    (no database reached, no key loaded or made, nothing started), then dropped."""
    if {module.name for module in modules} == set(NAMES):
        return openapi(modules)
    every = settings.model_copy(update={"modules": list(NAMES)})
    return openapi(described(every).modules)


def described(settings: Settings) -> Runtime:
    """The modules built only to be described: no database is connected (the engines never
    are), and no key or secret is loaded or generated."""
    placeholders = {name: "postgresql+asyncpg://unused@localhost/unused" for name in NAMES}
    return build_runtime(settings, placeholders, describing=True)


def check_every_consumer_is_here(settings: Settings) -> None:
    """On the in-process bus an event reaches only this process's modules: with one left
    out, a relay here would mark its events sent that nobody received."""
    absent = [name for name in NAMES if name not in settings.modules]
    if absent and settings.bus.transport == "inprocess":
        raise ConfigurationError(
            f"ENCURTA_MODULES leaves out {', '.join(absent)}, but the in-process bus only "
            "reaches modules in this process: their events would have no consumer. Run all "
            "modules here, or split them over Kafka (ENCURTA_BUS__TRANSPORT=kafka)."
        )


def create_app(
    settings: Settings, database_urls: Mapping[str, str] | None = None
) -> FrontedStarlette:
    check_every_consumer_is_here(settings)
    runtime = build_runtime(settings, database_urls or {})
    if not runtime.verifier.can_verify:
        raise ConfigurationError(
            "no module in this process signs access tokens, so they are verified with auth's "
            "public key: set ENCURTA_TOKENS__PUBLIC_KEY_FILE or ENCURTA_TOKENS__JWKS_URL"
        )

    @functools.cache
    def spec() -> dict[str, Any]:  # made on first request: nothing at start-up needs it
        return whole_api(settings, runtime.modules)

    @functools.cache
    def document() -> bytes:
        return bytes(JSONResponse(spec()).body)

    @functools.cache
    def reference() -> list[Tag]:
        return api_reference(spec())

    # In a thread: the first call may build the modules of other processes (~0.5 s).
    async def openapi_json(request: Request) -> Response:
        return Response(await asyncio.to_thread(document), media_type="application/json")

    async def docs(request: Request) -> Response:
        return docs_page(request, await asyncio.to_thread(spec), reference())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # /openapi.json and /docs first: the redirect route `/{code}` would answer them otherwise.
    routes = [
        Route("/openapi.json", openapi_json),
        Route("/docs", docs, methods=["GET"]),
        metrics_route(runtime.metrics),
        *all_routes(runtime.modules),
    ]
    meter = runtime.metrics.requests if runtime.metrics is not None else None
    app = FrontedStarlette(
        front=_front(runtime.modules),
        literal_paths=_literal_paths(routes),
        outermost=None if meter is None else functools.partial(RequestMetrics, meter=meter),
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        # Inside the front door: the redirect gets no log line (request_log.py).
        middleware=[Middleware(RequestLog)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    return app
