"""`POST /api/imports`: another shortener's export, uploaded as the request body, imported
for the caller (imports.py).

The body is never held in memory: as it arrives it is checked (UTF-8, no line longer than
`MAX_LINE_BYTES`) and spooled to a temporary file, which is then read row by row and
stored batch by batch. Checking it whole first means a body that is not text, or holds
an endless line, is refused before any row is stored. An upload is bounded by the
server's upload limits (ENCURTA_SERVER__UPLOAD_MAX_BYTES and __UPLOAD_TIMEOUT_SECONDS), not
by the smaller ones on any body; `encurta import` has none.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import tempfile
from typing import IO, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import json_response, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.kernel.tokens import unauthorized
from app.modules.shortener.import_formats import MAX_JSON_BYTES, FormatError, parse
from app.modules.shortener.imports import Importer, Summary
from app.modules.shortener.service import OwnerDeleted

MAX_LINE_BYTES = 64 * 1024
JSON_DUMPS = frozenset({"kutt", "yourls"})  # the formats that may be a JSON document
LISTED_REFUSALS = 100
_SPOOLED_IN_MEMORY = 1024 * 1024
# Each upload may spool up to the upload limit (1 GiB) to the temporary directory: without
# a cap, any account could fill the disk with a handful of concurrent uploads. One import
# per account at a time, and a few per process; more is a 429, before the body is read.
MAX_IMPORTS_AT_ONCE = 4
RETRY_AFTER_SECONDS = 60


class ImportQuery(BaseModel):
    format: Literal["shlink", "kutt", "yourls", "bitly", "csv", "jsonl"] = Field(
        description='The export\'s format (README, "Import and export").'
    )
    dry_run: bool = Field(default=False, description="Check and count, store nothing.")


class RefusalOut(BaseModel):
    line: int = Field(description="The row's first line in the file (JSON dumps: its index).")
    reason: str


class ImportSummary(BaseModel):
    """What the import did (or, dry, would do)."""

    format: str
    dry_run: bool
    rows: int
    created: int
    skipped: int = Field(description="Already there: the caller's code, to the same URL.")
    refused: int
    refusals: list[RefusalOut] = Field(description=f"The first {LISTED_REFUSALS} refused rows.")
    refusals_not_listed: int


def _body_problem(message: str) -> Problem:
    return invalid_fields([{"field": "body", "message": message}])


async def spool(request: Request, into: IO[bytes], max_line: int = MAX_LINE_BYTES) -> None:
    """The body into `into`, checked as it streams: UTF-8 text, lines within `max_line`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line_bytes, line_number = 0, 1
    try:
        async for chunk in request.stream():
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = line_number + chunk[: max(exc.start, 0)].count(b"\n")
                raise _body_problem(f"not UTF-8 text (line {line})") from None
            *ended, rest = chunk.split(b"\n")
            for part in ended:
                if line_bytes + len(part) > max_line:
                    raise _too_long(line_number, max_line)
                line_bytes, line_number = 0, line_number + 1
            line_bytes += len(rest)
            if line_bytes > max_line:
                raise _too_long(line_number, max_line)
            await asyncio.to_thread(into.write, chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _body_problem("not UTF-8 text (it ends inside a character)") from None
    except ClientDisconnect:
        raise Problem(400, "The client disconnected before the body was complete.") from None


def _too_long(line: int, max_line: int) -> Problem:
    return Problem(413, f"body: line {line} is longer than {max_line} bytes.", slug="line-too-long")


def _busy(detail: str) -> Problem:
    return Problem(
        429, detail, slug="import-in-progress", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def build_import_routes(importer: Importer, gate: Gate) -> list[BaseRoute]:
    importing: set[UUID] = set()  # accounts with an import under way in this process

    async def upload(request: Request) -> Response:
        owner = await gate.authenticate(request, "links:write")
        query = read_query(request, ImportQuery)
        if owner.user_id in importing:
            raise _busy("This account has an import under way; send the next when it ends.")
        if len(importing) >= MAX_IMPORTS_AT_ONCE:
            raise _busy("The server is busy with other imports; try again in a minute.")
        importing.add(owner.user_id)
        try:
            return await _import(request, owner.user_id, query)
        finally:
            importing.discard(owner.user_id)

    async def _import(request: Request, owner_id: UUID, query: ImportQuery) -> Response:
        summary = Summary(listed=LISTED_REFUSALS)
        with tempfile.SpooledTemporaryFile(_SPOOLED_IN_MEMORY) as body:
            # Kutt's and YOURLS's API dumps are one JSON document, read whole anyway.
            whole = query.format in JSON_DUMPS
            await spool(request, body, MAX_JSON_BYTES if whole else MAX_LINE_BYTES)
            body.seek(0)
            # utf-8-sig: spreadsheets often start their CSV with a byte-order mark.
            lines = io.TextIOWrapper(body, encoding="utf-8-sig", newline="")
            try:
                rows = await asyncio.to_thread(parse, query.format, lines)
                await importer.run(request, owner_id, rows, summary, dry_run=query.dry_run)
            except FormatError as exc:
                raise _body_problem(f"not a {query.format} export: {exc}") from None
            except OwnerDeleted:
                raise unauthorized("The account of this token has been deleted.") from None
            finally:
                lines.detach()
        return json_response(
            ImportSummary(
                format=query.format,
                dry_run=query.dry_run,
                rows=summary.rows,
                created=summary.created,
                skipped=summary.skipped,
                refused=summary.refused,
                refusals=[RefusalOut(line=r.line, reason=r.reason) for r in summary.refusals],
                refusals_not_listed=summary.refused - len(summary.refusals),
            )
        )

    return [
        ApiRoute(
            "/api/imports",  # in app.kernel.http.UPLOAD_PATHS: the upload limits apply
            upload,
            method="POST",
            tag="links",
            auth=True,
            summary="Import links from another shortener's export (the body), for the caller",
            description="The body is the export file as it is (any content type): a Shlink, "
            "Kutt, YOURLS or Bitly export, encurta's generic CSV or its JSON Lines export. "
            "Rows are checked as POST /api/links checks a body; a row already there (the "
            "caller's code, to the same URL) is skipped, so importing again changes nothing. "
            "Password-protected links are refused: an export has no password.",
            query=ImportQuery,
            responses={
                200: ImportSummary,
                401: "No or invalid access token",
                413: "A line or the body is too long",
                429: "An import of the caller's (or too many of anyone's) is under way",
                422: "Bad format, or a body that is not that format's text",
            },
        )
    ]
