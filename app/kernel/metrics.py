"""`GET /metrics` in Prometheus' text format: requests, pools, databases, and what else
the process registers.

Each app has a registry of its own (tests build many apps in one process), made by the
composition root and handed to whatever records: the bus plumbing, and each module through
its `ModuleContext`. Requests are counted by route template, never by raw path (a scan of
random paths would make a series each): Starlette records the route it matched on the
scope, the front door marks the one-segment paths it takes, anything else is `unmatched`.
The counts are plain ints in dicts, turned into Prometheus families only at scrape time,
so that the redirect (counted in the express lane, below ASGI) pays a dict update and a
bisect, no lock. Values that need a query (a database answers, outbox backlog...) are
probed when scraped, each within `_PROBE_TIMEOUT_SECONDS`: a database that is down makes
`encurta_database_up 0`, not a hanging scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from time import perf_counter
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.front import FRONT_ROUTE, ROUTE_TEMPLATE
from app.kernel.problems import Problem

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"  # the route label of a request no route matched
# Seconds; the redirect answers in about a millisecond, an API call in a few.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_PROBE_TIMEOUT_SECONDS = 2.0
# A method label is one of these or `other`: a server that passes any token as a method
# (h11 does) would otherwise let each client make series of its own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

Probe = Callable[[], Awaitable[None]]


class MetricsSettings(BaseModel):
    token: SecretStr | None = Field(
        default=None,
        description="Serves GET /metrics to `Authorization: Bearer <token>`; unset: 404.",
    )

    @field_validator("token", mode="after")
    @classmethod
    def _empty_is_unset(cls, token: SecretStr | None) -> SecretStr | None:
        # `ENCURTA_METRICS__TOKEN=` must not serve the metrics to an empty bearer token.
        return token if token is not None and token.get_secret_value().strip() else None


class RequestMeter(Collector):
    """Requests by method, route template and status, and their latency by route."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        # Per route: the observations in each bucket (not cumulative), the last one +Inf.
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        # The express lane's answers (one route), kept apart: the fewest steps per redirect.
        self._express: dict[tuple[str, bytes], int] = {}
        self._express_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._express_sum = 0.0

    def express(self, method: str, status: bytes, seconds: float) -> None:
        """An answer of the express lane (`FRONT_ROUTE`); `status` as the three ASCII
        digits of its status line."""
        key = (method, status)
        counts = self._express
        counts[key] = counts.get(key, 0) + 1
        self._express_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._express_sum += seconds

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else OTHER_METHOD, route, status)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        buckets = self._buckets.get(route)
        if buckets is None:
            buckets = self._buckets[route] = [0] * (len(LATENCY_BUCKETS) + 1)
            self._sums[route] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sums[route] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "encurta_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        merged: dict[tuple[str, str, str], int] = {}
        counted: list[tuple[tuple[str, str, int | bytes], int]] = [*self._counts.items()]
        counted += [((m, FRONT_ROUTE, status), n) for (m, status), n in self._express.items()]
        for (method, route, status), count in counted:
            key = (method, route, str(int(status)))
            merged[key] = merged.get(key, 0) + count
        for labels, count in sorted(merged.items()):
            requests.add_metric(list(labels), count)
        yield requests
        latency = HistogramMetricFamily(
            "encurta_http_request_duration_seconds",
            "Seconds from a request's head to its answer, by route template.",
            labels=["route"],
        )
        bounds = [str(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
        routes = {route: (list(b), self._sums[route]) for route, b in self._buckets.items()}
        if self._express:
            buckets, total_seconds = routes.get(FRONT_ROUTE, ([0] * len(bounds), 0.0))
            express = zip(buckets, self._express_buckets, strict=True)
            routes[FRONT_ROUTE] = ([a + b for a, b in express], total_seconds + self._express_sum)
        for route, (buckets, seconds) in sorted(routes.items()):
            cumulative, total = [], 0
            for bound, count in zip(bounds, buckets, strict=True):
                total += count
                cumulative.append((bound, float(total)))
            latency.add_metric([route], cumulative, sum_value=seconds)
        yield latency


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    return str(scope.get(ROUTE_TEMPLATE, UNMATCHED))


class RequestMetrics:
    """ASGI middleware counting every request that goes through ASGI in `meter`."""

    def __init__(self, app: ASGIApp, meter: RequestMeter) -> None:
        self._app = app
        self._meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        began = perf_counter()
        status = 500  # unless the app starts an answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            self._meter.observe(
                scope["method"], route_template(scope), status, perf_counter() - began
            )


class _Pools(Collector):
    """Each module's connection pool, read when scraped: in use, idle, and waiting."""

    def __init__(self) -> None:
        self.engines: dict[str, AsyncEngine] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            state: GaugeMetricFamily(
                f"encurta_db_pool_{state}",
                f"Connections of the module's pool: {doc}.",
                labels=["module"],
            )
            for state, doc in (
                ("in_use", "checked out"),
                ("idle", "open, waiting in the pool"),
                ("waiting", "requests waiting for one"),
            )
        }
        for module, engine in sorted(self.engines.items()):
            pool: Any = engine.pool
            families["in_use"].add_metric([module], float(pool.checkedout()))
            families["idle"].add_metric([module], float(pool.checkedin()))
            families["waiting"].add_metric([module], float(_waiting(pool)))
        yield from families.values()


def _waiting(pool: Any) -> int:
    """Tasks waiting for a connection: the getters of the asyncio queue under SQLAlchemy's
    pool, which says no more; 0 for a pool of another kind."""
    queue = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")
    return len(getattr(queue, "_getters", ()) or ())


class Metrics:
    """One app's registry, its request meter, and the probes run when it is scraped."""

    def __init__(self, token: SecretStr) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMeter()
        self._token = token.get_secret_value().encode()
        self._probes: list[Probe] = []
        self._pools = _Pools()
        self.registry.register(self.requests)
        self.registry.register(self._pools)
        self._up = Gauge(
            "encurta_database_up",
            "1 if the module's database answered SELECT 1 when scraped, else 0.",
            ["module"],
            registry=self.registry,
        )

    def watch_database(self, module: str, engine: AsyncEngine) -> None:
        """Export the module's pool, and whether its database answers."""
        self._pools.engines[module] = engine

        async def up() -> None:
            self._up.labels(module).set(0)  # until it answers
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            self._up.labels(module).set(1)

        self._probes.append(up)

    def add_probe(self, probe: Probe) -> None:
        """Run `probe` (it sets its own gauges) each time the metrics are scraped."""
        self._probes.append(probe)

    def admits(self, authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token
        )

    async def refresh(self) -> None:
        await asyncio.gather(*(self._run(probe) for probe in self._probes))

    @staticmethod
    async def _run(probe: Probe) -> None:
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_SECONDS):
                await probe()
        except Exception as exc:  # noqa: BLE001 - the probe left its gauges saying so
            log.debug("a metrics probe failed: %s", exc)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def forget(gauge: Gauge, *labels: str) -> None:
    """Drop a series whose value is no longer known (its database did not answer)."""
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def metrics_route(metrics: Metrics | None) -> Route:
    """`GET /metrics`: out of the OpenAPI document (it is Prometheus', not the API's)."""

    async def endpoint(request: Request) -> Response:
        if metrics is None:
            raise Problem(404, "Metrics are off: set ENCURTA_METRICS__TOKEN to serve them.")
        if not metrics.admits(request.headers.get("authorization")):
            raise Problem(
                401,
                "GET /metrics needs `Authorization: Bearer <ENCURTA_METRICS__TOKEN>`.",
                slug="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        await metrics.refresh()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", endpoint, methods=["GET"])
