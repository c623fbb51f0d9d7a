"""The Module type: what a module shows the composition root, and nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from app.kernel.tokens import TokenVerifier

Hook = Callable[[], Awaitable[None]]


@dataclass
class ModuleContext:
    """What the composition root hands a module when it builds it."""

    engine: AsyncEngine
    verifier: TokenVerifier


@dataclass
class Module:
    """A module's public face: name, routes, tables, events, lifecycle hooks.

    `publishes` lists the event contracts it writes to its outbox (the composition root
    gives it a relay); `subscriptions` maps each contract it consumes to a batch handler
    `async def handle(conn, events)` (the composition root gives it an inbox consumer).
    Both are typed loosely here because the kernel sits below app.contracts and app.bus.
    """

    name: str
    engine: AsyncEngine
    metadata: MetaData
    routes: Sequence[BaseRoute] = ()
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    publishes: Sequence[type] = ()
    subscriptions: Mapping[type, Callable[..., Awaitable[None]]] = field(default_factory=dict)
    # Handlers every process of the module runs, with no database and no inbox (cache
    # eviction): `async def handle(events)`.
    broadcasts: Mapping[type, Callable[..., Awaitable[None]]] = field(default_factory=dict)
