"""The shortener use cases: create, list, show, change and delete links; resolve a code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ColumnElement, Row, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.bus.outbox import write_outbox
from app.contracts.shortener import LinkCreated, LinkDeleted, LinkUpdated
from app.kernel.database import driver_connection
from app.modules.shortener import codes
from app.modules.shortener.cache import MISSING, CachedLink, LinkCache
from app.modules.shortener.lookup import Lookups, Screen
from app.modules.shortener.owners import is_deleted, lock_owner
from app.modules.shortener.tables import click_counts, click_tallies, urls

_GENERATION_ATTEMPTS = 8
_USE_VISIT = """
    UPDATE urls SET visits = visits + 1
    WHERE code = $1 AND deleted_at IS NULL AND visits < max_visits
    RETURNING true
"""
_VISITS_LEFT = "SELECT visits < max_visits FROM urls WHERE code = $1 AND deleted_at IS NULL"
_VISIT_TIMEOUT = 10.0


class CodeTaken(Exception):
    pass


class LinkNotFound(Exception):
    pass


class OwnerDeleted(Exception):
    """The token outlived its account."""


class ClosedWindow(Exception):
    """`valid_from` would not be before `expires_at` (the table's `urls_window` check)."""


@contextmanager
def _window_checked() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if "urls_window" in str(exc.orig):
            raise ClosedWindow from None
        raise


@dataclass(frozen=True)
class Link:
    id: UUID
    code: str
    target_url: str
    owner_id: UUID | None
    created_at: datetime
    expires_at: datetime | None
    title: str | None
    tags: list[str]
    valid_from: datetime | None
    forward_query: bool
    max_visits: int | None
    visits: int
    has_password: bool
    redirect_rules: list[dict[str, Any]]
    click_count: int
    disabled: bool = False
    disabled_reason: str | None = None
    imported_clicks: int = 0


@dataclass(frozen=True)
class Page:
    links: list[Link]
    total: int


# Folded clicks plus the tallies not folded yet (clicks.py): exact at any moment.
_CLICK_COUNT = (
    func.coalesce(
        select(click_counts.c.clicks).where(click_counts.c.code == urls.c.code).scalar_subquery(),
        0,
    )
    + func.coalesce(
        select(func.sum(click_tallies.c.clicks))
        .where(click_tallies.c.code == urls.c.code)
        .scalar_subquery(),
        0,
    ).cast(BigInteger)
).label("click_count")

_STORED_COLUMNS = [
    urls.c.id,
    urls.c.code,
    urls.c.target_url,
    urls.c.owner_id,
    urls.c.created_at,
    urls.c.expires_at,
    urls.c.title,
    urls.c.tags,
    urls.c.valid_from,
    urls.c.forward_query,
    urls.c.max_visits,
    urls.c.visits,
    urls.c.password_hash.is_not(None).label("has_password"),
    urls.c.redirect_rules,
    urls.c.disabled_at.is_not(None).label("disabled"),
    urls.c.disabled_reason,
    urls.c.imported_clicks,
]
_LINK_COLUMNS = [*_STORED_COLUMNS, _CLICK_COUNT]
_SORTS = {
    "created_at": (urls.c.created_at.asc(), urls.c.id),
    "-created_at": (urls.c.created_at.desc(), urls.c.id),
    "click_count": (_CLICK_COUNT.asc(), urls.c.created_at.desc(), urls.c.id),
    "-click_count": (_CLICK_COUNT.desc(), urls.c.created_at.desc(), urls.c.id),
    "random": (func.random(),),  # the YOURLS API's `stats` with filter=rand
    # The Shlink API's `orderBy` (shortCode, longUrl, title).
    "code": (urls.c.code.asc(),),
    "-code": (urls.c.code.desc(),),
    "target_url": (urls.c.target_url.asc(), urls.c.created_at.desc(), urls.c.id),
    "-target_url": (urls.c.target_url.desc(), urls.c.created_at.desc(), urls.c.id),
    "title": (urls.c.title.asc().nulls_last(), urls.c.created_at.desc(), urls.c.id),
    "-title": (urls.c.title.desc().nulls_last(), urls.c.created_at.desc(), urls.c.id),
}
# The columns a change may set (PATCH's fields, as the routes name them in the table).
CHANGEABLE = frozenset(
    {
        "target_url",
        "expires_at",
        "title",
        "tags",
        "valid_from",
        "forward_query",
        "max_visits",
        "password_hash",
        "redirect_rules",
    }
)


def search_keys(
    code: str, target_url: str, title: str | None, tags: Sequence[str]
) -> dict[str, object]:
    """The folded keys that tag filters and searches compare (in Python: the database's
    own case folding may know ASCII only)."""
    return {
        "tag_keys": [tag.casefold() for tag in tags],
        "search_key": "\n".join((code, title or "", target_url)).casefold(),
    }


def _has_tag(tag: str) -> ColumnElement[bool]:
    return urls.c.tag_keys.contains([tag.casefold()])


def _matches(words: str) -> ColumnElement[bool]:
    folded = words.casefold()
    pattern = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return urls.c.search_key.like(f"%{pattern}%", escape="\\")


def _published(link: Link) -> dict[str, Any]:
    """What both link events tell of a link."""
    return {
        "code": link.code,
        "link_id": link.id,
        "owner_id": link.owner_id,
        "target_url": link.target_url,
        "expires_at": link.expires_at,
        "title": link.title,
        "tags": tuple(link.tags),
        "valid_from": link.valid_from,
        "forward_query": link.forward_query,
        "max_visits": link.max_visits,
        "has_password": link.has_password,  # never the hash
        "redirect_rules": tuple(link.redirect_rules),
    }


def _updated(link: Link, version: int) -> LinkUpdated:
    return LinkUpdated(
        **_published(link),
        version=version,
        disabled=link.disabled,
        disabled_reason=link.disabled_reason,
    )


def _visits_restart(limit: int | None, changes: dict[str, object]) -> dict[str, object]:
    """Setting or clearing a visit limit counts visits from 0 again; raising or lowering
    one keeps the count."""
    if "max_visits" in changes and (limit is None or changes["max_visits"] is None):
        return {"visits": 0}
    return {}


def _alive(owner_id: UUID) -> list[ColumnElement[bool]]:
    return [urls.c.owner_id == owner_id, urls.c.deleted_at.is_(None)]


async def publish_update(conn: AsyncConnection, row: Row[Any]) -> Link:
    """The link as an UPDATE left it (`row`: `_STORED_COLUMNS` and `version` RETURNING),
    with its `link_updated` written in the same transaction."""
    fields = row._asdict()
    version = fields.pop("version")
    count = (
        await conn.execute(select(_CLICK_COUNT).where(urls.c.code == fields["code"]))
    ).scalar_one()
    link = Link(**fields, click_count=count)
    await write_outbox(conn, [_updated(link, version)])
    return link


@dataclass
class Links:
    engine: AsyncEngine
    cache: LinkCache
    code_length: int
    # Why a link to a target answers 410 (its domain blocked): see lookup.py.
    screen: Screen | None = None
    _lookups: Lookups = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lookups = Lookups(self.engine, self.cache, self.screen)

    async def create(
        self,
        target_url: str,
        owner_id: UUID | None,
        code: str | None,
        expires_at: datetime | None,
        title: str | None = None,
        tags: Sequence[str] = (),
        valid_from: datetime | None = None,
        forward_query: bool = False,
        max_visits: int | None = None,
        password_hash: str | None = None,
        redirect_rules: Sequence[dict[str, Any]] = (),
    ) -> Link:
        """Insert the link and its `link_created` event in one transaction."""
        attempts = 1 if code else _GENERATION_ATTEMPTS
        for _ in range(attempts):
            candidate = code or codes.generate(self.code_length)
            link_id = uuid.uuid4()
            async with self.engine.begin() as conn:
                if owner_id is not None:
                    await lock_owner(conn, owner_id)
                    if await is_deleted(conn, owner_id):
                        raise OwnerDeleted
                row = (
                    await conn.execute(
                        insert(urls)
                        .values(
                            id=link_id,
                            code=candidate,
                            target_url=target_url,
                            owner_id=owner_id,
                            expires_at=expires_at,
                            title=title,
                            tags=list(tags),
                            valid_from=valid_from,
                            forward_query=forward_query,
                            max_visits=max_visits,
                            password_hash=password_hash,
                            redirect_rules=list(redirect_rules),
                            **search_keys(candidate, target_url, title, tags),
                        )
                        .on_conflict_do_nothing(index_elements=["code"])
                        .returning(*_STORED_COLUMNS)
                    )
                ).one_or_none()
                if row is None:
                    continue  # the code is taken: a custom one is refused, a generated retried
                link = Link(**row._asdict(), click_count=0)
                created = LinkCreated(**_published(link), created_at=link.created_at)
                await write_outbox(conn, [created])
            self.cache.evict(link.code)  # a cached "no such code" must not outlive this
            return link
        raise CodeTaken

    async def page(
        self,
        owner_id: UUID | None,
        page: int,
        per_page: int,
        *,
        tag: str | None = None,
        q: str | None = None,
        sort: str = "-created_at",
        tags: Sequence[str] = (),
        any_tag: bool = False,
    ) -> Page:
        """A page of the owner's live links; of every owner's when `owner_id` is None (for
        an admin: the caller decides who may ask). `tags`: links with all of them (with any
        when `any_tag`), as the Shlink API's `tags[]` and `tagsMode` ask."""
        chosen: list[ColumnElement[bool]] = (
            _alive(owner_id) if owner_id else [urls.c.deleted_at.is_(None)]
        )
        if tag:
            chosen.append(_has_tag(tag))
        if tags:
            keys = [each.casefold() for each in tags]
            chosen.append(
                urls.c.tag_keys.overlap(keys) if any_tag else urls.c.tag_keys.contains(keys)
            )
        if q:
            chosen.append(_matches(q))
        async with self.engine.connect() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(urls).where(*chosen))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(*_LINK_COLUMNS)
                    .where(*chosen)
                    .order_by(*_SORTS[sort])
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
            ).all()
        return Page(links=[Link(**row._asdict()) for row in rows], total=total)

    async def ranked(self, owner_id: UUID, sort: str, limit: int, offset: int) -> list[Link]:
        """`limit` of the owner's live links from `offset` in the order `sort` names (the
        YOURLS API counts from an offset, not in pages)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_LINK_COLUMNS)
                    .where(*_alive(owner_id))
                    .order_by(*_SORTS[sort])
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [Link(**row._asdict()) for row in rows]

    async def totals(self, owner_id: UUID) -> tuple[int, int]:
        """The owner's live links and their clicks, counted as `click_count` counts them."""
        counts = select(_CLICK_COUNT).where(*_alive(owner_id)).subquery()
        totals = select(func.count(), func.coalesce(func.sum(counts.c.click_count), 0))
        async with self.engine.connect() as conn:
            row = (await conn.execute(totals)).one()
        return int(row[0]), int(row[1])

    async def get(self, owner_id: UUID, code: str) -> Link:
        """The caller's link; another owner's is "not found", so codes of others do not leak."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_LINK_COLUMNS).where(urls.c.code == code, *_alive(owner_id))
                )
            ).one_or_none()
        if row is None:
            raise LinkNotFound
        return Link(**row._asdict())

    async def update(self, owner_id: UUID, code: str, changes: dict[str, object]) -> Link:
        """Change the caller's link and publish its new state (`link_updated`), in one
        transaction; every replica drops the link from its cache when it hears of it."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        with _window_checked():
            return await self._update(owner_id, code, changes)

    async def _update(self, owner_id: UUID, code: str, changes: dict[str, object]) -> Link:
        async with self.engine.begin() as conn:
            now = (
                await conn.execute(
                    select(urls.c.target_url, urls.c.title, urls.c.tags, urls.c.max_visits)
                    .where(urls.c.code == code, *_alive(owner_id))
                    .with_for_update()
                )
            ).one_or_none()
            if now is None:
                raise LinkNotFound
            after = {**now._asdict(), **changes}
            keys = search_keys(code, after["target_url"], after["title"], after["tags"])
            changes = {**changes, **keys, **_visits_restart(now.max_visits, changes)}
            row = (
                await conn.execute(
                    update(urls)
                    .where(urls.c.code == code, *_alive(owner_id))
                    .values(**changes, version=urls.c.version + 1, updated_at=func.now())
                    .returning(*_STORED_COLUMNS, urls.c.version)
                )
            ).one_or_none()
            if row is None:
                raise LinkNotFound
            link = await publish_update(conn, row)
        self.cache.evict(code)
        return link

    async def tags(self, owner_id: UUID) -> list[tuple[str, int]]:
        """The caller's tags (in one of their spellings, the lowest) with how many of their
        links (not deleted) carry each; the most used first."""
        spelt = (
            func.unnest(urls.c.tags, urls.c.tag_keys)
            .table_valued("value", "key")
            .render_derived(name="tag")
        )
        key = spelt.c.key
        statement = (
            select(func.min(spelt.c.value), func.count())
            .select_from(urls.join(spelt, true()))
            .where(*_alive(owner_id))
            .group_by(key)
            .order_by(func.count().desc(), key)
        )
        async with self.engine.connect() as conn:
            return [(tag, links) for tag, links in (await conn.execute(statement)).all()]

    async def tag_clicks(self, owner_id: UUID) -> dict[str, int]:
        """The clicks of the caller's live links per tag (folded as `tags` folds them), for
        the Shlink API's tag stats."""
        spelt = func.unnest(urls.c.tag_keys).table_valued("key").render_derived(name="tag")
        statement = (
            select(spelt.c.key, func.sum(_CLICK_COUNT))
            .select_from(urls.join(spelt, true()))
            .where(*_alive(owner_id))
            .group_by(spelt.c.key)
        )
        async with self.engine.connect() as conn:
            return {key: int(clicks) for key, clicks in (await conn.execute(statement)).all()}

    async def delete(self, owner_id: UUID, code: str) -> None:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(urls)
                    .where(urls.c.code == code, *_alive(owner_id))
                    .values(deleted_at=func.now())
                    .returning(urls.c.id, urls.c.owner_id)
                )
            ).one_or_none()
            if row is None:
                raise LinkNotFound
            await write_outbox(
                conn, [LinkDeleted(code=code, link_id=row.id, owner_id=row.owner_id)]
            )
        self.cache.evict(code)

    async def use_visit(self, code: str) -> bool:
        """Count a person's visit of a limited link, if one is left. One statement on the
        link's row: replicas queue there, so none lets visit max_visits + 1 through."""
        async with driver_connection(self.engine) as driver:
            return bool(await driver.fetchval(_USE_VISIT, code, timeout=_VISIT_TIMEOUT))

    async def has_visits_left(self, code: str) -> bool:
        async with driver_connection(self.engine) as driver:
            return bool(await driver.fetchval(_VISITS_LEFT, code, timeout=_VISIT_TIMEOUT))

    async def click_counts(self) -> dict[str, int]:
        """Every live link's click count: the shortener's side of `encurta reconcile`."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(urls.c.code, _CLICK_COUNT).where(urls.c.deleted_at.is_(None))
            )
            return {row.code: row.click_count for row in rows}

    def cached(self, code: str) -> CachedLink | None:
        """The link of `code` if the cache holds it, without waiting for anything."""
        cached = self.cache.get(code)
        return cached if isinstance(cached, CachedLink) else None

    async def resolve(self, code: str) -> CachedLink | None:
        """The hot path: from the cache; a miss joins the misses being looked up together
        (lookup.py), one indexed query for many codes."""
        cached = self.cache.get(code)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        return await self._lookups.get(code)
