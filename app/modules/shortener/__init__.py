"""The shortener module: short codes, redirects, click capture and click counts.

Public face: `ShortenerSettings` and `create_module`. So far it owns its database, role and
migration history; links and redirects arrive with their own issue.
"""

from __future__ import annotations

from app.kernel.module import Module, ModuleContext
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.tables import metadata

__all__ = ["ShortenerSettings", "create_module"]

NAME = "shortener"


def create_module(settings: ShortenerSettings, context: ModuleContext) -> Module:
    return Module(name=NAME, engine=context.engine, metadata=metadata)
