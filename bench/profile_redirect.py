"""Where a redirect's CPU goes: µs per redirect, per stage, from a py-spy profile.

    .venv/bin/python bench/profile_redirect.py [--mode durable|fast] [--seconds 8]

encurta runs as in bench/redirect.py's default configuration (one process with all modules,
pinned to core 0, the embedded PostgreSQL with fsync on; `fast` answers before the commit),
wrk loads `GET /{code}` from core 1, and py-spy samples the process at 200 Hz meanwhile.
Each sample is put in the first stage (below) that one of its frames belongs to, so a
stage holds what it calls; µs per redirect = samples x 5 ms / redirects served. Last, the
CPU the PostgreSQL server used meanwhile (every process of it), per redirect.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.registry import NAMES  # noqa: E402
from bench.support.database import databases  # noqa: E402
from bench.support.links import seed  # noqa: E402
from bench.support.serving import BIN, CODE, free_port, server  # noqa: E402
from bench.support.wrk import wrk  # noqa: E402

RATE_HZ = 200
# The first stage (in this order) that a frame of a sample belongs to takes the sample.
STAGES = [
    ("analytics consumer", ["modules/analytics/", "bus/inbox.py"]),
    ("relay (claim, publish, mark)", ["bus/relay.py", "bus/inprocess.py"]),
    ("click batcher, outbox write", ["shortener/clicks.py", "bus/outbox.py"]),
    ("click capture (edge)", ["shortener/edge.py", "shortener/visitors.py"]),
    (
        "redirect (front door, cache)",
        ["shortener/redirect.py", "kernel/front.py", "shortener/routes.py", "shortener/service.py"],
    ),
    ("starlette", ["starlette/"]),
    ("uvicorn, HTTP", ["uvicorn/", "kernel/http_protocol.py", "kernel/express_protocol.py"]),
]


def stage_of(stack: str) -> str:
    for name, parts in STAGES:
        if any(part in stack for part in parts):
            return name
    return "other (event loop, driver)"


def profile(
    mode: str, seconds: int, keep: Path | None = None
) -> tuple[float, collections.Counter[str], float]:
    with databases(NAMES) as made:
        root, urls = made.root, made.urls
        asyncio.run(seed(urls["shortener"]))
        env = {f"ENCURTA_{m.upper()}__DATABASE_URL": u for m, u in urls.items()}
        env |= {"ENCURTA_DATA_DIR": str(root / "data"), "ENCURTA_LOG_LEVEL": "warning"}
        if mode == "fast":
            env["ENCURTA_SHORTENER__WAIT_FOR_COMMIT"] = "false"
        port = free_port()
        argv = [str(BIN / "encurta"), "serve", "--port", str(port)]
        pids: list[int] = []
        with server(argv, port, env, pids) as base:
            url = f"{base}/{CODE}"
            wrk(url, 2, 64)  # warm-up
            raw = root / "profile.txt"
            spy = subprocess.Popen(
                [
                    *(str(BIN / "py-spy"), "record", "-p", str(pids[0]), "-d", str(seconds)),
                    *("-r", str(RATE_HZ), "-f", "raw", "-o", str(raw), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            cpu_before = made.cpu_seconds()
            figures = wrk(url, seconds, 64)
            database_cpu = made.cpu_seconds() - cpu_before
            spy.wait()
        if keep is not None:
            shutil.copy(raw, keep)
        samples: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                samples[stage_of(stack)] += int(count)
        return figures.requests_per_second, samples, database_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["durable", "fast"], default="durable")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="also save py-spy's raw profile here")
    args = parser.parse_args()
    if not (BIN / "py-spy").exists() or not shutil.which("wrk"):
        raise SystemExit("needs py-spy (make installs it) and wrk (apt-get install wrk)")
    rate, samples, database_cpu = profile(args.mode, args.seconds, args.keep)
    redirects = rate * args.seconds
    print(f"{args.mode}: {rate:,.0f} redirects/s; µs of CPU per redirect, by stage")
    total = 0.0
    for name in [*(name for name, _ in STAGES), "other (event loop, driver)"]:
        cost = samples[name] * (1e6 / RATE_HZ) / redirects
        total += cost
        print(f"  {name:<32} {cost:6.1f}")
    print(f"  {'total':<32} {total:6.1f}")
    print(f"  {'PostgreSQL (all its processes)':<32} {database_cpu * 1e6 / redirects:6.1f}")


if __name__ == "__main__":
    main()
