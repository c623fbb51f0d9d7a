"""The analytics module: every click, and per-link statistics, fed only by events.

Public face: `AnalyticsSettings` and `create_module`, which builds the module object: the
stats route (`GET /api/stats/{code}`), the tables of its own database, and the events it
consumes (link_created, link_clicked, link_deleted from the shortener; user_deleted from
auth), each with a batch handler the composition root wires to an inbox consumer. Nothing
else in the package is imported from outside it.
"""

from __future__ import annotations

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted
from app.kernel.module import Module, ModuleContext
from app.modules.analytics.routes import build_routes
from app.modules.analytics.service import StatsService
from app.modules.analytics.settings import AnalyticsSettings
from app.modules.analytics.subscribers import (
    on_link_clicked,
    on_link_created,
    on_link_deleted,
    on_user_deleted,
)
from app.modules.analytics.tables import metadata

__all__ = ["AnalyticsSettings", "create_module"]

NAME = "analytics"


def create_module(settings: AnalyticsSettings, context: ModuleContext) -> Module:
    return Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=build_routes(StatsService(context.engine, settings)),
        subscriptions={
            LinkCreated: on_link_created,
            LinkClicked: on_link_clicked,
            LinkDeleted: on_link_deleted,
            UserDeleted: on_user_deleted,
        },
    )
