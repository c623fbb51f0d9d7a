"""The bus plumbing's series (app.kernel.metrics serves them): per module, its outbox's
backlog and oldest unsent row, its consumer's batch sizes and lag, and its parked events.

The outbox and parking tables are the bus's own, so the queries that read them are here;
they run when the metrics are scraped (`Metrics.add_probe`), never on a request's path.
A module whose database does not answer loses these series until it does: an old value
would say the backlog is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.envelope import Envelope
from app.kernel.metrics import Probe, forget

_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

_OUTBOX = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE sent_at IS NULL"
)
_PARKED = text("SELECT count(*) FROM parked_events")


class BusMetrics:
    """The bus's series on one app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.backlog = Gauge(
            "encurta_outbox_backlog",
            "Events in the module's outbox not yet sent, when scraped.",
            ["module"],
            registry=registry,
        )
        self.oldest = Gauge(
            "encurta_outbox_oldest_unsent_seconds",
            "Age of the oldest unsent event in the module's outbox (0: none), when scraped.",
            ["module"],
            registry=registry,
        )
        self.parked = Gauge(
            "encurta_parked_events",
            "Events the module's consumer parked (could not handle), when scraped.",
            ["module"],
            registry=registry,
        )
        self.batch = Histogram(
            "encurta_consumer_batch_size",
            "Events per batch delivered to the module's consumer.",
            ["module"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "encurta_consumer_lag_seconds",
            "Age of the oldest event of the last batch the module's consumer was handed: how "
            "far behind its producers it is.",
            ["module"],
            registry=registry,
        )

    def delivered(self, module: str, envelopes: Sequence[Envelope]) -> None:
        """A consumer was handed a batch (app.bus.inbox.Consumer.deliver)."""
        if not envelopes:
            return
        self.batch.labels(module).observe(len(envelopes))
        try:
            lag = (datetime.now(UTC) - min(e.occurred_at for e in envelopes)).total_seconds()
        except TypeError:  # a naive timestamp from a foreign producer: no lag to say
            return
        self.lag.labels(module).set(max(lag, 0.0))

    def outbox_probe(self, module: str, engine: AsyncEngine) -> Probe:
        async def probe() -> None:
            try:
                async with engine.connect() as conn:
                    count, age = (await conn.execute(_OUTBOX)).one()
            except BaseException:
                forget(self.backlog, module)
                forget(self.oldest, module)
                raise
            self.backlog.labels(module).set(count)
            self.oldest.labels(module).set(float(age))

        return probe

    def parked_probe(self, module: str, engine: AsyncEngine) -> Probe:
        async def probe() -> None:
            try:
                async with engine.connect() as conn:
                    count = (await conn.execute(_PARKED)).scalar_one()
            except BaseException:
                forget(self.parked, module)
                raise
            self.parked.labels(module).set(count)

        return probe
