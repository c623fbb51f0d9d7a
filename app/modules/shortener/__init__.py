"""The shortener module: short codes, redirects, click capture and click counts.

Its public face is this file: `MODULE`, which the registry lists; `create_module` returns
the module object (routes, tables, the events it publishes and consumes, start/stop hooks).
Nothing else in the package is imported from outside it.
"""

from __future__ import annotations

from app.contracts.auth import UserDeleted
from app.contracts.shortener import (
    DomainBlocked,
    DomainUnblocked,
    LinkClicked,
    LinkCreated,
    LinkDeleted,
    LinkUpdated,
)
from app.kernel.hashing import Passwords
from app.kernel.limits import make_store
from app.modules.shortener.admin import AdminLinks, build_admin_routes
from app.modules.shortener.admin_pages import build_admin_page_routes
from app.modules.shortener.blocklist import Blocklist
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.clicks import ClickBatcher
from app.modules.shortener.edge import Edge, Geo
from app.modules.shortener.editing import LinkEditor
from app.modules.shortener.exports import LINKS as LINKS_EXPORT
from app.modules.shortener.import_command import IMPORT
from app.modules.shortener.import_routes import build_import_routes
from app.modules.shortener.imports import Importer
from app.modules.shortener.limits import CreationLimits, ScanGuard
from app.modules.shortener.moved import build_moved_routes
from app.modules.shortener.orphans import OrphanTally
from app.modules.shortener.pages import build_page_routes
from app.modules.shortener.passwords import LinkPasswords
from app.modules.shortener.protection import GuessThrottle
from app.modules.shortener.redirect import Redirector
from app.modules.shortener.routes import build_routes, target_checker
from app.modules.shortener.service import Links
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.shlink import build_shlink_routes
from app.modules.shortener.subscribers import evict_changed, on_user_deleted
from app.modules.shortener.tables import metadata
from app.modules.shortener.visitors import VisitorKeys, load_visitor_secret
from app.modules.shortener.yourls import build_yourls_routes
from app.wiring import Module, ModuleContext, ModuleSpec

__all__ = ["MODULE", "ShortenerSettings"]

NAME = "shortener"


def create_module(settings: ShortenerSettings, context: ModuleContext) -> Module:
    cache = LinkCache(settings.cache_size, settings.cache_ttl_seconds)
    blocklist = Blocklist(context.engine, cache, reload_seconds=settings.cache_ttl_seconds)
    links = Links(
        engine=context.engine,
        cache=cache,
        code_length=settings.code_length,
        screen=blocklist.refusal,
    )
    orphans = OrphanTally(context.engine)
    # The secret is read (or generated) at start-up, not here: `encurta openapi` builds
    # modules too, and must write no key.
    keys = VisitorKeys(lambda: load_visitor_secret(settings, context.data_dir))
    edge = Edge(Geo(settings.geoip_city_db), keys, settings.trusted_proxies)
    batcher = ClickBatcher(context.engine, settings, context.handoff, context.metrics)
    store = make_store(context.limits, context.engine)
    creation = CreationLimits(store, settings.limits, settings.trusted_proxies)
    guard = ScanGuard(store, settings.limits, settings.trusted_proxies)
    redirector = Redirector(links, edge, batcher, settings.redirect_status, orphans, guard)
    passwords = LinkPasswords(
        links,
        redirector,
        Passwords(settings.argon2, unknown_users=False),
        GuessThrottle(settings.password_guesses, settings.password_guess_window_seconds),
        settings.trusted_proxies,
    )
    admin_links = AdminLinks(context.engine, cache)
    editor = LinkEditor(links, passwords, target_checker(settings, blocklist), creation)
    admin_routes = build_admin_routes(
        links, admin_links, blocklist, context.gate, settings.public_url
    )
    module = Module(
        name=NAME,
        engine=context.engine,
        metadata=metadata,
        routes=[
            # Before `/{code}`, whose POST would otherwise take /yourls-api.php.
            *build_yourls_routes(
                links,
                context.gate,
                settings.public_url,
                target_checker(settings, blocklist),
                creation,
            ),
            *build_shlink_routes(links, editor, context.gate, settings.public_url),
            *build_routes(
                links, redirector, context.gate, settings, passwords, blocklist, creation
            ),
            *admin_routes,
            *build_moved_routes(),
            *build_import_routes(
                Importer(links, target_checker(settings, blocklist)), context.gate
            ),
            *build_page_routes(links, context.gate, settings, editor),
            *build_admin_page_routes(
                links, admin_links, blocklist, context.gate, settings.public_url
            ),
        ],
        front=redirector,
        tallies={"clicks per link": links.click_counts},
        on_startup=[keys.start, batcher.start, blocklist.start, orphans.start],
        on_shutdown=[orphans.stop, blocklist.stop, batcher.stop, keys.stop, passwords.close],
        publishes=[
            LinkCreated,
            LinkUpdated,
            LinkDeleted,
            LinkClicked,
            DomainBlocked,
            DomainUnblocked,
        ],
    )
    module.keep_access_list()
    module.report_key_use(context.gate)
    module.subscribe(UserDeleted, on_user_deleted(cache.evict))
    module.subscribe_every_process(LinkDeleted, evict_changed(cache))
    module.subscribe_every_process(LinkUpdated, evict_changed(cache))
    module.subscribe_every_process(DomainBlocked, blocklist.heard())
    module.subscribe_every_process(DomainUnblocked, blocklist.heard())
    return module


MODULE = ModuleSpec(
    name=NAME,
    settings=ShortenerSettings,
    create=create_module,
    commands=(IMPORT,),
    exports=[LINKS_EXPORT],
)
