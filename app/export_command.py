"""`encurta export links|clicks --format jsonl|csv [--owner EMAIL] [--code CODE] [--output
FILE]`: a module's rows, streamed from its own database to stdout or a file.

The composition root's part of the exports: which module answers which export, and which
module turns `--owner EMAIL` into an account id, come from the registry (`ModuleSpec.exports`,
`ModuleSpec.find_account`), so no module is named here and modules never call each other.
Without `--owner` it is an operator's full export: every owner's rows, anonymous links too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from app.config import Settings
from app.kernel.database import create_engine
from app.registry import MODULES
from app.wiring import AccountLookup, Export, ExportRequest, ModuleSpec

OK, REFUSED = 0, 1
FORMATS = ("jsonl", "csv")
ReadyDatabases = Callable[[Sequence[str]], AbstractContextManager[dict[str, str]]]


def _exports() -> dict[str, tuple[ModuleSpec[Any], Export[Any]]]:
    return {export.name: (spec, export) for spec in MODULES for export in spec.exports}


def add_parser(commands: Any) -> None:
    """`encurta export`, on the CLI's subcommands."""
    exports = _exports()
    parser = commands.add_parser(
        "export",
        help="stream links or clicks to stdout or a file (JSONL or CSV)",
        description="Export rows from their module's database, read in pages (any size in "
        "bounded memory): "
        + "; ".join(f"`{name}`: {export.help}" for name, (_, export) in exports.items())
        + ". JSONL lines are the API's JSON of each row. With --owner, one account's rows; "
        "without, everyone's (an operator's full export, anonymous links included). Beside "
        "a running `encurta serve` it uses serve's embedded server and leaves it running. "
        "Exit status: 0 done, 1 refused (the reason on stderr), 2 usage.",
    )
    parser.add_argument("what", choices=sorted(exports))
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="default: jsonl")
    parser.add_argument("--owner", metavar="EMAIL", help="only this account's rows")
    parser.add_argument("--code", metavar="CODE", help="only this link's rows")
    parser.add_argument("--output", metavar="FILE", type=Path, help="write here (default: stdout)")


def export(settings: Settings, args: argparse.Namespace, ready: ReadyDatabases) -> int:
    """Run `encurta export`; `ready` opens the named modules' databases, migrated."""
    spec, chosen = _exports()[args.what]
    names = [spec.name]
    accounts: ModuleSpec[Any] | None = None
    if args.owner is not None:
        accounts = next((s for s in MODULES if s.find_account is not None), None)
        if accounts is None:
            print("encurta export: no module keeps accounts to find --owner", file=sys.stderr)
            return REFUSED
        names.append(accounts.name)
    with ready(names) as urls:
        return asyncio.run(_export(settings, args, spec, chosen, accounts, urls))


async def _owner(
    settings: Settings, accounts: ModuleSpec[Any], urls: dict[str, str], email: str
) -> UUID:
    find: AccountLookup | None = accounts.find_account
    assert find is not None
    engine = create_engine(urls[accounts.name], settings.database(accounts.name))
    try:
        return await find(engine, email)
    finally:
        await engine.dispose()


async def _export(
    settings: Settings,
    args: argparse.Namespace,
    spec: ModuleSpec[Any],
    chosen: Export[Any],
    accounts: ModuleSpec[Any] | None,
    urls: dict[str, str],
) -> int:
    owner_id = None
    if accounts is not None:
        try:
            owner_id = await _owner(settings, accounts, urls, args.owner)
        except LookupError as exc:
            print(f"encurta export: {exc}", file=sys.stderr)
            return REFUSED
    request = ExportRequest(
        format=args.format,
        owner_id=owner_id,
        code=args.code,
        local_url=f"http://{settings.host}:{settings.port}",
    )
    engine = create_engine(urls[spec.name], settings.database(spec.name))
    try:
        chunks = chosen.stream(settings.section(spec), engine, request)
        if args.output is None:
            return await _write(chunks, sys.stdout.buffer)
        # Written beside, then renamed: a failed export leaves no half file under the name.
        partial = args.output.with_name(args.output.name + ".part")
        with partial.open("wb") as file:
            await _write(chunks, file)
        partial.replace(args.output)
        print(f"encurta export: wrote {args.output}", file=sys.stderr)
        return OK
    finally:
        await engine.dispose()


async def _write(chunks: Any, out: BinaryIO) -> int:
    try:
        async for chunk in chunks:
            out.write(chunk)
        out.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error; Python must not report the
        # flush of a closed stdout at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return OK
