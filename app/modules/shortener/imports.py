"""Importing links from another shortener's export, in batches: for `encurta import` and
`POST /api/imports` alike.

Each row is checked as `POST /api/links` checks a body (CreateLink, then the target
checker and the rules through editing.checked_parts), so an import refuses exactly what
the API refuses. Rows that pass are stored in batches, each batch one transaction with
its `link_created` events in the outbox, as any creation publishes them.

Re-running an import changes nothing: a row whose code the owner already has, to the same
target, is skipped. A row without a code gets one derived from its owner and target (not
a random one), so it too is found again on the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from app.bus.outbox import write_outbox
from app.contracts.shortener import LinkCreated
from app.kernel.http import unstorable_strings
from app.kernel.problems import Problem, validation_problem
from app.modules.shortener.codes import _ALPHABET, imported_code_problem
from app.modules.shortener.editing import Checked, checked_parts
from app.modules.shortener.import_formats import ImportRow
from app.modules.shortener.owners import is_deleted, lock_owner
from app.modules.shortener.schemas import CreateLink
from app.modules.shortener.service import (
    _STORED_COLUMNS,
    Link,
    Links,
    OwnerDeleted,
    _published,
    search_keys,
)
from app.modules.shortener.tables import urls

BATCH_SIZE = 500


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str


@dataclass
class Summary:
    """What an import did (or, dry, would do). `refusals` keeps the first `listed` of them;
    `on_refusal`, if given, hears of every one as it happens."""

    rows: int = 0
    created: int = 0
    skipped: int = 0
    refused: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    listed: int = 100
    on_refusal: Callable[[Refusal], None] | None = None

    def refuse(self, line: int, reason: str) -> None:
        self.refused += 1
        refusal = Refusal(line, reason)
        if len(self.refusals) < self.listed:
            self.refusals.append(refusal)
        if self.on_refusal is not None:
            self.on_refusal(refusal)


@dataclass(frozen=True)
class _New:
    """A row that passed every check: what will be stored."""

    line: int
    code: str
    given_code: bool
    target: str
    body: CreateLink
    rules: list[dict[str, Any]]
    created_at: datetime
    clicks: int


def derived_code(owner_id: UUID, target: str, length: int) -> str:
    """The same code for the same owner and target on every run (base62, `length` long);
    unguessable to others, who do not know the owner's id."""
    number = int.from_bytes(hashlib.sha256(owner_id.bytes + target.encode()).digest(), "big")
    letters = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHABET))
        letters.append(_ALPHABET[digit])
    return "".join(letters)


def _reason(problem: Problem) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in problem.errors)


def _take(rows: Iterator[ImportRow], count: int) -> list[ImportRow]:
    return list(itertools.islice(rows, count))


@dataclass(frozen=True)
class Importer:
    links: Links
    checked: Checked
    batch_size: int = BATCH_SIZE

    async def run(
        self,
        request: Request,
        owner_id: UUID,
        rows: Iterator[ImportRow],
        summary: Summary,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Summary:
        """Import `rows` for `owner_id`, batch by batch (OwnerDeleted; FormatError from the
        reader). Rows are read off the event loop: a reader may block on its file."""
        while batch := await asyncio.to_thread(_take, rows, self.batch_size):
            summary.rows += len(batch)
            fresh = []
            for row in batch:
                prepared = self._prepared(request, owner_id, row)
                if isinstance(prepared, str):
                    summary.refuse(row.line, prepared)
                else:
                    fresh.append(prepared)
            if fresh:
                await self._store(owner_id, fresh, summary, dry_run)
            if progress is not None:
                progress(len(batch))
        return summary

    def _prepared(self, request: Request, owner_id: UUID, row: ImportRow) -> _New | str:
        """The row ready to store, or why it is refused."""
        if row.refusal is not None:
            return row.refusal
        # read_json refuses these for the API; an export's rows come by another road, and
        # one NUL would otherwise fail its whole batch in PostgreSQL (a 500, the import cut).
        unstorable = unstorable_strings(row.link)
        if unstorable:
            return "; ".join(
                f"{name}: Text must not contain NUL or lone surrogates." for name in unstorable
            )
        link = dict(row.link)
        code = link.pop("code", None)  # checked apart: imported codes may be shorter
        if code is not None and not isinstance(code, str):
            return "code: not text"
        if code is not None and (problem := imported_code_problem(code)):
            return f"code: {problem}"
        try:
            body = CreateLink.model_validate(link)
            target, rules = checked_parts(self.checked, request, body)
        except ValidationError as exc:
            return _reason(validation_problem(exc))
        except Problem as problem:
            return _reason(problem)
        now = datetime.now(UTC)
        if row.created_at is not None and not (
            datetime(1970, 1, 1, tzinfo=UTC) <= row.created_at <= now
        ):
            return "created_at: not between 1970 and now"
        return _New(
            line=row.line,
            code=code or derived_code(owner_id, target, self.links.code_length),
            given_code=code is not None,
            target=target,
            body=body,
            rules=rules,
            created_at=row.created_at or now,
            clicks=row.clicks,
        )

    async def _store(
        self, owner_id: UUID, batch: list[_New], summary: Summary, dry_run: bool
    ) -> None:
        """One transaction: the batch's new links and their `link_created` events."""
        if dry_run:  # what would be created, of what is stored now
            async with self.links.engine.connect() as conn:
                summary.created += len(await self._sorted_out(conn, owner_id, batch, summary))
            return
        async with self.links.engine.begin() as conn:
            await lock_owner(conn, owner_id)
            if await is_deleted(conn, owner_id):
                raise OwnerDeleted
            fresh = await self._sorted_out(conn, owner_id, batch, summary)
            if not fresh:
                return
            # One statement compiled once for every batch (executemany, rows sent as
            # parameters): a VALUES list of the batch's own would be compiled per batch.
            stored = await conn.execute(
                insert(urls)
                .on_conflict_do_nothing(index_elements=["code"])
                .returning(*_STORED_COLUMNS),
                [self._values(owner_id, new) for new in fresh],
            )
            links = [Link(**row._asdict(), click_count=0) for row in stored]
            await write_outbox(
                conn,
                [LinkCreated(**_published(link), created_at=link.created_at) for link in links],
            )
        made = {link.code for link in links}
        summary.created += len(made)
        for new in fresh:
            self.links.cache.evict(new.code)  # a cached "no such code" must not outlive this
            if new.code not in made:  # taken since it was looked up
                summary.refuse(new.line, _taken(new))

    async def _sorted_out(
        self, conn: AsyncConnection, owner_id: UUID, batch: list[_New], summary: Summary
    ) -> list[_New]:
        """The rows to insert; the others counted as skipped (already there: the owner's
        code to the same target) or refused (the code is someone else's, or deleted)."""
        found = await conn.execute(
            select(urls.c.code, urls.c.owner_id, urls.c.target_url, urls.c.deleted_at).where(
                urls.c.code.in_({new.code for new in batch})
            )
        )
        holders: dict[str, tuple[UUID | None, str, bool]] = {
            row.code: (row.owner_id, row.target_url, row.deleted_at is None) for row in found
        }
        fresh = []
        for new in batch:
            holder = holders.get(new.code)
            if holder is None:
                holders[new.code] = (owner_id, new.target, True)
                fresh.append(new)
            elif holder == (owner_id, new.target, True):
                summary.skipped += 1
            else:
                summary.refuse(new.line, _taken(new))
        return fresh

    @staticmethod
    def _values(owner_id: UUID, new: _New) -> dict[str, Any]:
        body = new.body
        return {
            "id": uuid.uuid4(),
            "code": new.code,
            "target_url": new.target,
            "owner_id": owner_id,
            "created_at": new.created_at,
            "expires_at": body.expires_at,
            "title": body.title,
            "tags": list(body.tags),
            "valid_from": body.valid_from,
            "forward_query": body.forward_query,
            "max_visits": body.max_visits,
            "password_hash": None,
            "redirect_rules": new.rules,
            "imported_clicks": new.clicks,
            **search_keys(new.code, new.target, body.title, body.tags),
        }


def _taken(new: _New) -> str:
    if new.given_code:
        return f"code: The code '{new.code}' is taken."
    return "code: the code derived for this row is taken; give the row a code"
