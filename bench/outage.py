"""A module's PostgreSQL stopped for --seconds (10 by default) while clients click.

    .venv/bin/python bench/outage.py [--victim shortener|analytics|both] [--seconds 10]

encurta runs as one process (in-process bus); the victim module's database is on a
PostgreSQL of its own, stopped (`pg_ctl stop -m fast`) once 50 302s have arrived and started
again --seconds later, while 8 clients keep clicking one link. Printed per victim: the 302s
before, during and after the outage, requests unanswered, whether the process lived, and
once the counts agree: clicks lost (a 302 never stored by analytics), duplicated, the
shortener's count, and the seconds from the database's return until analytics agreed.
tests/e2e/test_database_outage.py is the short version, in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.registry import NAMES  # noqa: E402
from bench.support.database import databases  # noqa: E402
from tests.conftest import truncate_all  # noqa: E402
from tests.e2e.outage import Outage, click_through_outage, isolated, own_postgres  # noqa: E402


def line(outage: Outage) -> str:
    return (
        f"{outage.victim:<10} down {outage.seconds:4.1f}s | 302s: {outage.before} before, "
        f"{outage.during} during, {outage.after} after | unanswered {outage.unanswered}, "
        f"refused {outage.refused} | process {'alive' if outage.alive else 'EXITED'} | "
        f"lost {outage.lost}, duplicated {outage.duplicated}, phantom {outage.phantom} | "
        f"shortener count {outage.counted}, analytics "
        f"{'agrees' if outage.agree else 'DIFFERS'} {outage.converge_seconds:.1f}s after "
        "the return"
    )


async def scenario(victim: str, urls: dict[str, str], root: Path, seconds: float) -> Outage:
    await truncate_all(urls)
    with own_postgres(root / f"{victim}-db") as server:
        mixed = urls | {victim: await isolated(server, victim)}
        return await click_through_outage(victim, server, mixed, root / f"{victim}-data", seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--victim", choices=["shortener", "analytics", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="of the outage")
    args = parser.parse_args()
    victims = ["shortener", "analytics"] if args.victim == "both" else [args.victim]
    failed = False
    with databases(NAMES, durable=False) as made:
        for victim in victims:
            outage = asyncio.run(scenario(victim, made.urls, made.root, args.seconds))
            print(line(outage), flush=True)
            failed |= bool(outage.lost or outage.duplicated or not outage.agree)
            failed |= not outage.alive
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
