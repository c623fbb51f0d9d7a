"""The analytics module: every click, and per-link statistics, fed only by events.

Public face: `MODULE`, which the registry lists; `create_module` builds the module object:
the stats route (`GET /api/stats/{code}`), a link's live clicks (`GET
/api/stats/{code}/live`, live.py, fed by a broadcast: every process hears every click), the
tables of its own database, and the events it consumes (link_created, link_updated,
link_clicked, link_deleted from the shortener; user_deleted from auth), each with a batch
handler the composition root wires to an inbox consumer. Nothing else in the package is
imported from outside it.
"""

from __future__ import annotations

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted, LinkUpdated
from app.modules.analytics.exports import CLICKS as CLICKS_EXPORT
from app.modules.analytics.live import LiveClicks
from app.modules.analytics.pages import build_page_routes
from app.modules.analytics.retention import retention_rules
from app.modules.analytics.routes import build_routes
from app.modules.analytics.service import StatsService
from app.modules.analytics.settings import AnalyticsSettings
from app.modules.analytics.shlink import build_shlink_routes
from app.modules.analytics.subscribers import (
    on_link_clicked,
    on_link_created,
    on_link_deleted,
    on_link_updated,
    on_user_deleted,
)
from app.modules.analytics.tables import metadata
from app.wiring import Module, ModuleContext, ModuleSpec

__all__ = ["MODULE", "AnalyticsSettings"]

NAME = "analytics"


def create_module(settings: AnalyticsSettings, context: ModuleContext) -> Module:
    stats = StatsService(context.engine, settings)
    live = LiveClicks()
    module = Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=[
            *build_routes(stats, context.gate, live),
            *build_page_routes(stats, context.gate),
            *build_shlink_routes(stats, context.gate),
        ],
        tallies={"clicks per link": stats.click_totals},
        retention=retention_rules(settings),
    )
    module.subscribe(LinkCreated, on_link_created)
    module.subscribe(LinkClicked, on_link_clicked, deduplicates=True)
    module.subscribe(LinkUpdated, on_link_updated)
    module.subscribe(LinkDeleted, on_link_deleted)
    module.subscribe_every_process(LinkClicked, live.heard_clicks)
    module.subscribe_every_process(LinkDeleted, live.heard_deletions)
    module.keep_access_list()
    module.report_key_use(context.gate)
    module.subscribe(UserDeleted, on_user_deleted)
    return module


MODULE = ModuleSpec(
    name=NAME, settings=AnalyticsSettings, create=create_module, exports=[CLICKS_EXPORT]
)
