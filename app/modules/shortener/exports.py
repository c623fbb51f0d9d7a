"""The links export: `GET /api/links/export?format=jsonl|csv` and `encurta export links`.

Links are read in keyset pages of `PAGE_SIZE` in the order (created_at, code), each page a
short query of its own: memory holds one page whatever the number of links, and no
transaction stays open while a slow client reads. A JSONL line is the links API's JSON of
the link (`link_out`, as GET /api/links/{code} answers), so `encurta import jsonl` reads an
export back as the same links. The CSV starts with the generic import columns (url, code,
title, tags, created_at; tags joined by `|`) and goes on with every other field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.exports import ExportFormat, csv_lines, jsonl_line
from app.modules.shortener.schemas import LinkOut, link_out
from app.modules.shortener.service import _LINK_COLUMNS, Link
from app.modules.shortener.settings import ShortenerSettings
from app.modules.shortener.tables import urls
from app.wiring import Export, ExportRequest

PAGE_SIZE = 1000
TAG_SEPARATOR = "|"
GENERIC_COLUMNS = ("url", "code", "title", "tags", "created_at")
CSV_COLUMNS = GENERIC_COLUMNS + tuple(
    name for name in LinkOut.model_fields if name not in GENERIC_COLUMNS
)

EXPORT_DESCRIPTION = """\
The caller's live links, oldest first (by `created_at`, then `code`), streamed as they are
read, in pages of 1,000: any number of links in bounded memory. `jsonl`: one link per line,
exactly the JSON of GET /api/links/{code}, which `encurta import jsonl` reads back. `csv`:
the columns `url,code,title,tags,created_at` (tags joined by `|`), then the other fields of
a link; a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed
with `'` so a spreadsheet shows it as text.
"""


class ExportQuery(BaseModel):
    format: ExportFormat = Field(
        default="jsonl",
        description="`jsonl`: one link per line, as the links API shows it; `csv`: the "
        "generic import columns first, tags joined by `|`.",
    )


@dataclass
class LinkExport:
    """Reads live links page by page, oldest first (ties by code)."""

    engine: AsyncEngine
    page_size: int | None = None  # PAGE_SIZE, read when a page is (tests lower it)

    async def pages(
        self, owner_id: UUID | None, code: str | None = None
    ) -> AsyncIterator[list[Link]]:
        """The owner's live links, oldest first (ties by code), or only the one of
        `code`. Every owner's when `owner_id` is None (an operator's export), then by code:
        the unique index on code pages them, where (created_at, code) has an index only
        per owner and each page would sort the whole table."""
        chosen: list[ColumnElement[bool]] = [urls.c.deleted_at.is_(None)]
        if owner_id is not None:
            chosen.append(urls.c.owner_id == owner_id)
        if code is not None:
            chosen.append(urls.c.code == code)
        order = (urls.c.created_at, urls.c.code) if owner_id is not None else (urls.c.code,)
        size = self.page_size or PAGE_SIZE
        after: tuple[Any, ...] | None = None
        while True:
            keyset = [tuple_(*order) > tuple_(*after)] if after else []
            statement = select(*_LINK_COLUMNS).where(*chosen, *keyset).order_by(*order).limit(size)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(statement)).all()
            if rows:
                yield [Link(**row._asdict()) for row in rows]
            if len(rows) < size:
                return
            after = tuple(getattr(rows[-1], column.name) for column in order)

    async def chunks(
        self,
        export_format: ExportFormat,
        owner_id: UUID | None,
        base_url: str,
        code: str | None = None,
    ) -> AsyncIterator[bytes]:
        """The export as bytes, one chunk per page (the CSV header first)."""
        if export_format == "csv":
            yield csv_lines([CSV_COLUMNS])
        async for page in self.pages(owner_id, code):
            shown = [link_out(link, base_url) for link in page]
            if export_format == "jsonl":
                yield b"".join(jsonl_line(link) for link in shown)
            else:
                yield csv_lines(_csv_row(link) for link in shown)


def _csv_row(link: LinkOut) -> list[Any]:
    fields = link.model_dump(mode="json")
    fields["tags"] = TAG_SEPARATOR.join(link.tags)
    fields["redirect_rules"] = json.dumps(
        fields["redirect_rules"], ensure_ascii=False, separators=(",", ":")
    )
    return [fields[column] for column in CSV_COLUMNS]


async def _stream_links(
    settings: ShortenerSettings, engine: AsyncEngine, request: ExportRequest
) -> AsyncIterator[bytes]:
    base_url = (settings.public_url or request.local_url).rstrip("/")
    export_format = cast(ExportFormat, request.format)
    chunks = LinkExport(engine).chunks(export_format, request.owner_id, base_url, request.code)
    async for chunk in chunks:
        yield chunk


LINKS = Export[ShortenerSettings](
    name="links",
    help="live links as the links API shows them: one owner's oldest first, everyone's by code",
    stream=_stream_links,
)
