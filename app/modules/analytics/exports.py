"""A link's raw clicks, exported: `GET /api/stats/{code}/clicks?format=jsonl|csv` and
`encurta export clicks`.

Read from `clicks` in keyset pages of `PAGE_SIZE` in the order (occurred_at, click_id), on
the index (code, occurred_at): memory holds one page whatever the link's traffic, and no
transaction stays open while a slow client reads. Only what a visit tells about the
visitor's context leaves: never an address (not even the anonymized network) and never the
visitor hash, the bot rule's reason or the click id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.exports import ExportFormat, csv_lines, jsonl_line
from app.modules.analytics.schemas import QueryTime, in_utc, iso_8601
from app.modules.analytics.settings import AnalyticsSettings
from app.modules.analytics.tables import clicks, url_creations
from app.wiring import Export, ExportRequest

PAGE_SIZE = 1000

EXPORT_DESCRIPTION = """\
The link's raw clicks, oldest first, streamed as they are read, in pages of 1,000: any
number of clicks in bounded memory. Each click: occurred_at, country, city, referer,
referer_host, user_agent, browser, os, device, is_bot; never an IP address (not even the
anonymized network) and never a visitor hash. `from` (inclusive) and `to` (exclusive)
narrow the range; bots are left out unless `include_bots=true`, as in the stats. `jsonl`:
one click per line; `csv`: a header line, then a click per line, with a cell starting with
`=`, `+`, `-`, `@`, a tab or a carriage return prefixed with `'`.
"""


class ClickOut(BaseModel):
    """One click as an export shows it (`code`: an operator's export holds many links)."""

    code: str
    occurred_at: datetime
    country: str | None
    city: str | None
    referer: str | None
    referer_host: str
    user_agent: str | None
    browser: str
    os: str
    device: str
    is_bot: bool


COLUMNS = tuple(ClickOut.model_fields)


class ClicksQuery(BaseModel):
    """`?format=&from=&to=&include_bots=`; times as the stats take them."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True)

    format: ExportFormat = Field(default="jsonl", description="`jsonl` or `csv`.")
    from_: QueryTime = Field(default=None, alias="from")
    to: QueryTime = None
    include_bots: bool = Field(default=False, description="Export bots' clicks too.")

    # The stats' own rules for the times: ISO 8601, UTC when no offset, 1970 to 9000.
    _iso_8601 = field_validator("from_", "to", mode="before")(iso_8601)
    _in_utc = field_validator("from_", "to")(in_utc)


@dataclass(frozen=True)
class ClickFilter:
    """Which clicks: of one owner's links (None: everyone's), of one code (None: every
    code), in [start, end), with or without bots."""

    owner_id: UUID | None = None
    code: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    include_bots: bool = True


@dataclass
class ClickExport:
    engine: AsyncEngine
    page_size: int | None = None  # PAGE_SIZE, read when a page is (tests lower it)

    async def pages(self, chosen: ClickFilter) -> AsyncIterator[list[ClickOut]]:
        """The clicks `chosen` names, page by page, by link and then oldest first (ties by
        click id): the order of the index (code, occurred_at), so that a page of an export
        of many links is read from the index too, not sorted from all their clicks."""
        size = self.page_size or PAGE_SIZE
        where: list[ColumnElement[bool]] = []
        if chosen.code is not None:
            where.append(clicks.c.code == chosen.code)
        if chosen.owner_id is not None:
            owned = select(url_creations.c.code).where(
                url_creations.c.owner_id == chosen.owner_id,
                url_creations.c.deleted_at.is_(None),
            )
            where.append(clicks.c.code.in_(owned))
        if chosen.start is not None:
            where.append(clicks.c.occurred_at >= chosen.start)
        if chosen.end is not None:
            where.append(clicks.c.occurred_at < chosen.end)
        if not chosen.include_bots:
            where.append(clicks.c.is_bot.is_(False))
        columns = [clicks.c[name] for name in COLUMNS]
        page = (
            select(*columns, clicks.c.code.label("link_code"), clicks.c.click_id)
            .where(*where)
            .order_by(clicks.c.code, clicks.c.occurred_at, clicks.c.click_id)
        )
        after: tuple[str, datetime, UUID] | None = None
        while True:
            rows: list[Any] = []
            if after is not None:
                # The rest of the link the last page ended in. Plain comparisons on code
                # and occurred_at, which the index (code, occurred_at) seeks to; a row
                # comparison over the three columns makes PostgreSQL scan every click.
                code, occurred_at, click_id = after
                rows = await self._read(
                    page.where(
                        clicks.c.code == code,
                        clicks.c.occurred_at >= occurred_at,
                        tuple_(clicks.c.occurred_at, clicks.c.click_id)
                        > tuple_(occurred_at, click_id),
                    ),
                    size,
                )
            if len(rows) < size and (after is None or chosen.code is None):
                # Then the next links' clicks, from the start of the first one after it.
                later = [clicks.c.code > after[0]] if after is not None else []
                rows += await self._read(page.where(*later), size - len(rows))
            if rows:
                yield [ClickOut(**_shown(row._asdict())) for row in rows]
            if len(rows) < size:
                return
            after = (rows[-1].link_code, rows[-1].occurred_at, rows[-1].click_id)

    async def _read(self, statement: Select[Any], limit: int) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(statement.limit(limit))).all())

    async def chunks(
        self, export_format: ExportFormat, chosen: ClickFilter
    ) -> AsyncIterator[bytes]:
        """The export as bytes, one chunk per page (the CSV header first)."""
        if export_format == "csv":
            yield csv_lines([COLUMNS])
        async for page in self.pages(chosen):
            if export_format == "jsonl":
                yield b"".join(jsonl_line(click) for click in page)
            else:
                # The JSON's own values (times as the API writes them), in columns.
                yield csv_lines(list(click.model_dump(mode="json").values()) for click in page)


def _shown(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: fields[name] for name in COLUMNS}


async def _stream_clicks(
    settings: AnalyticsSettings, engine: AsyncEngine, request: ExportRequest
) -> AsyncIterator[bytes]:
    """Every click (bots included) of the owner's live links, or of every link when no
    owner is given; link by link (by code), each link's clicks oldest first."""
    chosen = ClickFilter(owner_id=request.owner_id, code=request.code)
    async for chunk in ClickExport(engine).chunks(cast(ExportFormat, request.format), chosen):
        yield chunk


CLICKS = Export[AnalyticsSettings](
    name="clicks",
    help="raw clicks (no address, no visitor hash), link by link, oldest first",
    stream=_stream_clicks,
)
