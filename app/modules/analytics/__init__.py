"""The analytics module: every click, and per-link statistics, fed only by events.

Public face: `AnalyticsSettings` and `create_module`. So far it owns its database, role and
migration history; the click consumers and stats arrive with their own issue.
"""

from __future__ import annotations

from app.kernel.module import Module, ModuleContext
from app.modules.analytics.settings import AnalyticsSettings
from app.modules.analytics.tables import metadata

__all__ = ["AnalyticsSettings", "create_module"]

NAME = "analytics"


def create_module(settings: AnalyticsSettings, context: ModuleContext) -> Module:
    return Module(name=NAME, engine=context.engine, metadata=metadata)
