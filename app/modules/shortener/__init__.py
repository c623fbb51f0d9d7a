"""The shortener module: short codes, redirects, click capture and click counts.

Its public face is this file: `ShortenerSettings` and `create_module`, which returns the
module object (routes, tables, the events it publishes and consumes, start/stop hooks).
Nothing else in the package is imported from outside it.
"""

from __future__ import annotations

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted
from app.kernel.module import Module, ModuleContext
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.clicks import ClickBatcher
from app.modules.shortener.edge import Edge, Geo, VisitorSalts
from app.modules.shortener.routes import build_routes
from app.modules.shortener.service import Links
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.subscribers import evict_deleted, on_user_deleted
from app.modules.shortener.tables import metadata

__all__ = ["ShortenerSettings", "create_module"]

NAME = "shortener"


def create_module(settings: ShortenerSettings, context: ModuleContext) -> Module:
    cache = LinkCache(settings.cache_size, settings.cache_ttl_seconds)
    links = Links(engine=context.engine, cache=cache, code_length=settings.code_length)
    edge = Edge(Geo(settings.geoip_city_db), VisitorSalts(context.engine),
                settings.trusted_proxies)
    batcher = ClickBatcher(context.engine, settings)
    return Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=build_routes(links, edge, batcher, settings),
        on_startup=[batcher.start],
        on_shutdown=[batcher.stop],
        publishes=[LinkCreated, LinkDeleted, LinkClicked],
        subscriptions={UserDeleted: on_user_deleted(cache.evict)},
        broadcasts={LinkDeleted: evict_deleted(cache)},
    )
