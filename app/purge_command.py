"""`encurta purge [--dry-run] [--module NAME]`: the retention rules, run once, now.

The same rules the periodic job of `encurta serve` runs (the bus's for each module's outbox
and inbox tables, then the module's own: `app.main.retention_rules`), in the same small
batches, so it is safe beside a running server. It prints one line per rule: module, what,
how old a row must be to go, and how many rows went (with --dry-run: would go, and nothing
is deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.kernel.retention import describe, purge_rule
from app.main import Runtime, build_runtime, retention_rules
from app.registry import NAMES

OK, FAILED = 0, 1
ReadyDatabases = Callable[[Sequence[str]], AbstractContextManager[dict[str, str]]]


def add_parser(commands: Any) -> None:
    """`encurta purge`, on the CLI's subcommands."""
    parser = commands.add_parser(
        "purge",
        help="delete rows past their retention now (or, --dry-run, count them)",
        description="Apply every retention rule once, as the server does every "
        "ENCURTA_RETENTION_INTERVAL_SECONDS: rows older than their setting are deleted in "
        "small batches, each its own short transaction. Prints, per rule, the module, what, "
        "how old a row must be to go, and the rows that went. Beside a running `encurta "
        "serve` it uses serve's embedded server and leaves it running. Exit status: 0 done, "
        "1 a database could not be used.",
    )
    parser.add_argument("--dry-run", action="store_true", help="only count the rows that would go")
    parser.add_argument("--module", choices=NAMES, help="only this module's rules")


def purge(settings: Settings, args: argparse.Namespace, ready: ReadyDatabases) -> int:
    """Run `encurta purge`; `ready` opens the named modules' databases, migrated."""
    names = [args.module] if args.module else list(settings.modules)
    chosen = settings.model_copy(update={"modules": names})
    with ready(names) as urls:
        runtime = build_runtime(chosen, urls)
        return asyncio.run(_purge(chosen, runtime, dry_run=args.dry_run))


async def _purge(settings: Settings, runtime: Runtime, *, dry_run: bool) -> int:
    lines: list[tuple[str, str, str, str]] = []
    try:
        for module in runtime.modules:
            for rule in retention_rules(settings, module):
                if rule.older_than is None:
                    count = "-"
                else:
                    count = str(await purge_rule(module.engine, rule, dry_run=dry_run))
                lines.append((module.name, rule.what, describe(rule.older_than), count))
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]
        print(f"encurta purge: a database could not be used: {reason}", file=sys.stderr)
        return FAILED
    finally:
        for module in runtime.modules:
            await module.engine.dispose()
    header = ("module", "what", "older than", "would go" if dry_run else "gone")
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(3)]
    for row in [header, *lines]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[3]
        )
    if dry_run:
        print("(dry run: nothing was deleted)")
    return OK
