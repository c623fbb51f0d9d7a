"""The webhooks module: the account's link events, POSTed to its own receivers, signed.

Public face: `MODULE`, which the registry lists; `create_module` builds the module object:
the API (`/api/webhooks`, routes.py), the tables of its own database, the shortener's
events it consumes through its inbox (each becomes a delivery row in the same transaction,
subscribers.py), and the delivery worker its hooks start and stop (worker.py), which signs
every request as Standard Webhooks and connects only to public addresses (guard.py).
Nothing else in the package is imported from outside it.
"""

from __future__ import annotations

from app.contracts.auth import UserDeleted
from app.contracts.shortener import LinkClicked, LinkCreated, LinkDeleted, LinkUpdated
from app.modules.webhooks.retention import retention_rules
from app.modules.webhooks.routes import build_routes
from app.modules.webhooks.service import WebhookService
from app.modules.webhooks.settings import WebhooksSettings
from app.modules.webhooks.subscribers import (
    on_link_clicked,
    on_link_created,
    on_link_deleted,
    on_link_updated,
    on_user_deleted,
)
from app.modules.webhooks.tables import metadata
from app.modules.webhooks.worker import DeliveryWorker
from app.wiring import Module, ModuleContext, ModuleSpec

__all__ = ["MODULE", "WebhooksSettings"]

NAME = "webhooks"


def create_module(settings: WebhooksSettings, context: ModuleContext) -> Module:
    service = WebhookService(context.engine, settings)
    worker = DeliveryWorker(context.engine, settings)
    module = Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=build_routes(service, context.gate),
        on_startup=[worker.start],
        on_shutdown=[worker.stop],
        retention=retention_rules(settings),
    )
    module.subscribe(LinkCreated, on_link_created)
    module.subscribe(LinkUpdated, on_link_updated)
    module.subscribe(LinkDeleted, on_link_deleted)
    module.subscribe(LinkClicked, on_link_clicked)
    module.keep_access_list()
    module.report_key_use(context.gate)
    module.subscribe(UserDeleted, on_user_deleted)
    return module


MODULE = ModuleSpec(name=NAME, settings=WebhooksSettings, create=create_module)
