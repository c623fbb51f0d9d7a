"""The Module type: what a module shows the composition root, and nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

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
    """A module's public face: its name, routes, tables, migrations and lifecycle hooks.

    `publishes` and `subscribes` name event types; the bus (later issues) reads them.
    """

    name: str
    engine: AsyncEngine
    metadata: MetaData
    routes: Sequence[BaseRoute] = ()
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    publishes: Sequence[str] = ()
    subscribes: Sequence[str] = ()
