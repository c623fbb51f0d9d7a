"""Streamed exports (JSONL and CSV) of rows read in keyset pages, for every module.

A module's export yields its rows page by page (never the whole table); this file turns
them into lines and into a streamed HTTP attachment. JSONL lines are the API's own JSON of
the row (the same serializer as `json_response`), so what a client reads from the API and
from an export is the same object. CSV cells that a spreadsheet would run as a formula are
defused (OWASP's "CSV injection"): a text cell starting with = + - @, a tab or a carriage
return gets a leading `'`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from starlette.responses import StreamingResponse

ExportFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def jsonl_line(model: BaseModel) -> bytes:
    """One line of JSONL: `model` as `json_response` renders it (pydantic's JSON values,
    compact, UTF-8 unescaped), written by pydantic's own serializer in one step: twice as
    fast as building the dict and handing it to `json.dumps`, for the same JSON."""
    return model.__pydantic_serializer__.to_json(model) + b"\n"


def safe_cell(value: object) -> str:
    """A CSV cell of a JSON value: null is empty, booleans are true/false, text that a
    spreadsheet would take for a formula starts with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Sequence[object]]) -> bytes:
    """The rows as CSV (RFC 4180 quoting, CRLF line ends), each cell through `safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode()


def file_name(what: str, export_format: str, today: datetime | None = None) -> str:
    """`encurta-<what>-YYYY-MM-DD.<format>`, the day in UTC."""
    day = (today or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    return f"encurta-{what}-{day}.{export_format}"


def attachment(chunks: AsyncIterator[bytes], export_format: str, name: str) -> StreamingResponse:
    """A download, streamed as the chunks come (one per page of rows)."""
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f"attachment; filename={name}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
