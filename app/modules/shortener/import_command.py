"""`encurta import FORMAT FILE [--owner EMAIL] [--dry-run]`: another shortener's export
imported on the server, against the shortener's own database (imports.py does the work,
as for `POST /api/imports`; here the file has no size limit).

Whose links they become is auth's to say: the composition root (app/cli.py) asks auth for
the owner of `--owner EMAIL` (or the only admin) and hands its id over as `args.owner_id`.
Each refused row is printed as it is met (`line N: reason`), then the summary; a progress
bar runs on stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from tqdm import tqdm

from app.modules.shortener.blocklist import Blocklist
from app.modules.shortener.cache import LinkCache
from app.modules.shortener.import_formats import FORMATS, FormatError, parse
from app.modules.shortener.imports import Importer, Refusal, Summary
from app.modules.shortener.routes import target_checker
from app.modules.shortener.service import Links, OwnerDeleted
from app.modules.shortener.settings import ShortenerSettings
from app.wiring import Command

OK, FAILED = 0, 1


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="the export's format")
    parser.add_argument("file", type=Path, help="the export file (`-` for stdin)")
    parser.add_argument(
        "--owner",
        metavar="EMAIL",
        help="the account the links will belong to (default: the only active admin)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check and count, store nothing")
    parser.set_defaults(owner_from_auth=True)  # app/cli.py resolves --owner into owner_id


def offline_request() -> Request:
    """What the target checker needs of a request, for a command that has none: it then
    knows this instance by its configured public URL alone (a link to it is refused)."""
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/",
            "query_string": b"",
            "headers": [],
            "server": None,
            "scheme": "https",
            "root_path": "",
        }
    )


def _printer(out: IO[str]) -> Callable[[Refusal], None]:
    def refused(refusal: Refusal) -> None:
        print(f"line {refusal.line}: {refusal.reason}", file=out)

    return refused


def _opened(path: Path) -> IO[str]:
    """The file as text, a byte-order mark skipped (spreadsheets write one), line ends as
    they are (the csv module reads them); the caller closes it."""
    if str(path) == "-":
        return open(sys.stdin.fileno(), encoding="utf-8-sig", newline="", closefd=False)
    return path.open(encoding="utf-8-sig", newline="")


async def _run(args: argparse.Namespace, settings: ShortenerSettings, engine: AsyncEngine) -> int:
    cache = LinkCache(0, 0)
    blocklist = Blocklist(engine, cache, reload_seconds=0)
    await blocklist.load()
    links = Links(engine=engine, cache=cache, code_length=settings.code_length)
    importer = Importer(links, target_checker(settings, blocklist))
    summary = Summary(listed=0, on_refusal=_printer(sys.stdout))
    name = "stdin" if str(args.file) == "-" else str(args.file)
    try:
        source = _opened(args.file)
    except OSError as exc:
        print(f"encurta import: cannot read {name}: {exc.strerror}", file=sys.stderr)
        return FAILED
    with source, tqdm(unit=" rows", file=sys.stderr, disable=None, desc="import") as bar:
        try:
            await importer.run(
                offline_request(),
                args.owner_id,
                parse(args.format, source),
                summary,
                dry_run=args.dry_run,
                progress=bar.update,
            )
        except (FormatError, UnicodeDecodeError) as exc:
            bar.close()
            print(f"encurta import: {name} is not a {args.format} export: {exc}", file=sys.stderr)
            return FAILED
        except OwnerDeleted:
            print("encurta import: the owner's account has been deleted", file=sys.stderr)
            return FAILED
    what = "would be created" if args.dry_run else "created"
    print(
        f"{summary.rows} rows: {summary.created} {what}, {summary.skipped} skipped "
        f"(already there), {summary.refused} refused"
        + (" (dry run: nothing stored)" if args.dry_run else "")
    )
    return OK


IMPORT = Command[ShortenerSettings](
    name="import",
    help="import links from Shlink, Kutt, YOURLS, Bitly, a CSV or encurta's JSONL export",
    description="Import another shortener's export: FORMAT is shlink, kutt, yourls, bitly, "
    "csv (url,code,title,tags,created_at) or jsonl (`encurta export links`). Each row is "
    "checked as POST /api/links checks a link; refused rows are printed with their line "
    "and reason. Importing again changes nothing. The links belong to --owner EMAIL, or "
    "the only active admin. Exit status: 0 done (even with refused rows), 1 failed.",
    arguments=_arguments,
    run=_run,
)
