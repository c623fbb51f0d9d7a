"""What a module shows the composition root, typed against the event contracts.

This layer sits above `app.bus` and `app.contracts` and below the modules, so a module's
face is checked by mypy: `Module.subscribe` pairs an event contract with a handler of
exactly that contract (a handler of another event is a type error), and `publishes` names
contracts, which the relay enforces (it claims only the declared types).
Each module package exposes one `ModuleSpec` as `MODULE`; `app/registry.py` lists them, and
everything else (settings sections, the composition root, the CLI) derives from that list.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from app.bus.handoff import HandOff
from app.bus.outbox import write_outbox
from app.contracts.access import ApiKeyUsed
from app.contracts.auth import AccessChanged, ApiKeyIssued, ApiKeyRevoked
from app.contracts.base import IntegrationEvent
from app.kernel.access import AccessList, Gate
from app.kernel.limits import LimitSettings
from app.kernel.retention import Retention
from app.kernel.settings import DatabaseSettings, TokenSettings

E = TypeVar("E", bound=IntegrationEvent)
S = TypeVar("S", bound=DatabaseSettings)

Hook = Callable[[], Awaitable[None]]
# A count per key that another module keeps too, by its own means: `encurta reconcile`
# compares the modules' tallies of one name (clicks per link: the shortener's click_count,
# analytics' total), which must agree once the events between them are delivered.
Tally = Callable[[], Awaitable[Mapping[str, int]]]


class ModuleConfigurationError(RuntimeError):
    """A module cannot be built from its settings. The message names the setting, never a
    secret; the CLI prints it as it is."""


@dataclass(frozen=True)
class Subscription(Generic[E]):
    """An event the module consumes, and its batch handler: `handle(conn, events)` runs in
    one transaction of the module's database with the inbox's bookkeeping."""

    event: type[E]
    handle: Callable[[AsyncConnection, Sequence[E]], Awaitable[None]]
    # The handler itself applies a redelivered event at most once (its table is keyed by
    # the event's own id), so the inbox need not record the id: a row and index entry less.
    deduplicates: bool = False


@dataclass(frozen=True)
class Broadcast(Generic[E]):
    """An event every process of the module hears, with no database and no inbox (cache
    eviction): `handle(events)`."""

    event: type[E]
    handle: Callable[[Sequence[E]], Awaitable[None]]


@dataclass(frozen=True)
class ModuleContext:
    """What the composition root hands every module it builds, and all it hands."""

    engine: AsyncEngine  # the module's own database
    gate: Gate  # authenticates callers (tokens, API keys) against this module's access list
    tokens: TokenSettings  # issuer and audience of access tokens
    data_dir: Path  # keys and secrets generated at first start
    # Where a hot writer of the module's outbox hands committed rows to its relay.
    handoff: HandOff = field(default_factory=HandOff)  # (by default: none handed over)
    # Where the module keeps its rate-limit counters (app.kernel.limits.make_store).
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Built only to be described (`encurta openapi`, `encurta modules`): load and generate
    # no key or secret, for none will be used.
    describing: bool = False
    # The process's Prometheus registry (app.kernel.metrics): the module registers its own
    # series here, named after it (`encurta_<module>_...`). Read only when metrics are on.
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)


Handler = Callable[[AsyncConnection, Sequence[E]], Awaitable[None]]
BroadcastHandler = Callable[[Sequence[E]], Awaitable[None]]


@dataclass
class Module:
    """A built module: routes, tables, events, lifecycle hooks.

    Subscriptions are added with `subscribe` rather than listed: a call binds the handler's
    type to the event's, where a list would let mypy widen both to `Any`.
    """

    name: str
    engine: AsyncEngine
    metadata: MetaData
    routes: Sequence[BaseRoute] = ()
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    publishes: Sequence[type[IntegrationEvent]] = ()
    # Keys this module signs access tokens with: every module in the process trusts them.
    public_keys: Sequence[Ed25519PublicKey] = ()
    # Answers `GET`/`HEAD` of one-segment paths ahead of the router (app.kernel.front): the
    # redirect. At most one module in a process has one.
    front: ASGIApp | None = None
    tallies: Mapping[str, Tally] = field(default_factory=dict)
    # What of its own tables may go, and when (app.kernel.retention); the composition root
    # adds the bus's rules for the outbox and inbox tables and runs them all periodically.
    retention: Sequence[Retention] = ()
    subscriptions: list[Subscription[Any]] = field(default_factory=list, init=False)
    broadcasts: list[Broadcast[Any]] = field(default_factory=list, init=False)

    def subscribe(self, event: type[E], handle: Handler[E], *, deduplicates: bool = False) -> None:
        """Consume `event` through this module's inbox: once in effect, in one replica.

        `deduplicates`: `handle` applies a redelivered event at most once by itself (a
        click's id is the primary key of the table it lands in, and every effect of the
        handler follows from the rows it inserted), so the inbox does not record these
        events' ids. Only for such handlers, whose rows outlive any redelivery."""
        self.subscriptions.append(Subscription(event, handle, deduplicates))

    def subscribe_every_process(self, event: type[E], handle: BroadcastHandler[E]) -> None:
        """Hear `event` in every process of this module, with no inbox (cache eviction)."""
        self.broadcasts.append(Broadcast(event, handle))

    def keep_access_list(self) -> None:
        """Keep this module's copy of auth's access list (app.kernel.access), which its
        Gate reads: the module's tables need `access_tables(metadata)`. Every write is
        idempotent and order-proof, so the inbox need not record these events."""
        access = AccessList()

        async def account(conn: AsyncConnection, events: Sequence[AccessChanged]) -> None:
            for e in events:
                await access.account_changed(
                    conn,
                    user_id=e.user_id,
                    active=e.active,
                    role=e.role,
                    tokens_after=e.tokens_after,
                    changed_at=e.changed_at,
                )

        async def issued(conn: AsyncConnection, events: Sequence[ApiKeyIssued]) -> None:
            for e in events:
                await access.key_issued(
                    conn,
                    key_id=e.key_id,
                    key_hash=bytes.fromhex(e.key_hash),
                    user_id=e.user_id,
                    role=e.role,
                    scopes=e.scopes,
                    expires_at=e.expires_at,
                )

        async def revoked(conn: AsyncConnection, events: Sequence[ApiKeyRevoked]) -> None:
            for e in events:
                await access.key_revoked(
                    conn, key_id=e.key_id, key_hash=bytes.fromhex(e.key_hash), user_id=e.user_id
                )

        self.subscribe(AccessChanged, account, deduplicates=True)
        self.subscribe(ApiKeyIssued, issued, deduplicates=True)
        self.subscribe(ApiKeyRevoked, revoked, deduplicates=True)

    def report_key_use(self, gate: Gate) -> None:
        """Tell auth when this module admits an API key (at most once a minute per key),
        through the module's outbox, so its owner sees the key's last use wherever it was."""

        async def used(conn: AsyncConnection, key_id: UUID, user_id: UUID, at: datetime) -> None:
            await write_outbox(conn, [ApiKeyUsed(key_id=key_id, user_id=user_id, used_at=at)])

        gate.on_key_use = used
        self.publishes = [*self.publishes, ApiKeyUsed]


@dataclass(frozen=True)
class Command(Generic[S]):
    """An operator command a module adds to `encurta` (`encurta users ...`).

    `arguments` declares its arguments on its argparse parser; `run(args, settings,
    engine)` does the work against the module's own database (migrated first), with the
    module's settings section, and returns the exit status: 0 done, 1 refused or failed
    (having said why on stderr in one line), 2 a usage error. Nothing else of the module is
    built: no key is loaded, no route or relay made.
    """

    name: str
    help: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, S, AsyncEngine], Awaitable[int]]


@dataclass(frozen=True)
class ExportRequest:
    """What `encurta export` asks a module for: a format (`jsonl`, `csv`), the rows of one
    owner (None: every owner's, an operator's full export), of one code (None: all), and
    the address the server answers on when the module has no public URL configured."""

    format: str
    owner_id: UUID | None
    code: str | None
    local_url: str


@dataclass(frozen=True)
class Export(Generic[S]):
    """Rows a module lets `encurta export NAME` stream from its own database, as bytes in
    the export format, page by page (never the whole table in memory)."""

    name: str
    help: str
    stream: Callable[[S, AsyncEngine, ExportRequest], AsyncIterator[bytes]]


# Finds whose rows an operator's command is about, in the module that keeps accounts: the
# active account with this email or, without one, the instance's only active admin; a
# LookupError saying why in one line when there is none.
AccountLookup = Callable[[AsyncEngine, str | None], Awaitable[UUID]]


@dataclass(frozen=True)
class ModuleSpec(Generic[S]):
    """A module as the registry lists it: its name (which is also its settings section,
    its database, its role and its Alembic history), its settings model, its factory, the
    operator commands it adds to `encurta`, the exports `encurta export` may ask of it, and,
    for the module that keeps accounts, how an operator's `--owner EMAIL` is resolved."""

    name: str
    settings: type[S]
    create: Callable[[S, ModuleContext], Module]
    commands: Sequence[Command[S]] = ()
    exports: Sequence[Export[S]] = ()
    find_account: AccountLookup | None = None
