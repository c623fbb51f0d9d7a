"""Redirects per second and latency of `GET /{code}`, against a bare Starlette 302.

    .venv/bin/python bench/redirect.py [--duration 8] [--runs 3] [--connections 64]
    .venv/bin/python bench/redirect.py --links 1000000      # and random codes over 1M links
    .venv/bin/python bench/redirect.py --soak 600 [--links 1000000]   # RSS over 10 minutes
    .venv/bin/python bench/redirect.py --variant ENCURTA_BUS__HANDOFF_LIMIT=0  # A/B

Each server runs under uvicorn with one worker pinned to core 0 (`taskset -c 0`); wrk
(`apt-get install wrk`) runs pinned to core 1. encurta runs as deployed by default: one
process with all three modules, the embedded PostgreSQL with fsync on, click capture on,
and the relay and analytics consumer in the same process; and, for comparison, as the
shortener alone in its process, its events going to Kafka (a Tansu broker), on a database
of its own. Printed: medians over the runs, each configuration's ratio to the bare app
measured in the same run, the server's RSS before and after each measurement, its CPU time
per request (steadier than the rate when other work shares the cores: the time it waited
for a core is not in it; every other run goes through the configurations in reverse
order, so none always follows another), and at the
end what `encurta reconcile` says of the one-process configurations: every click they
counted in `click_count` is in analytics' total.

`--links N` seeds N more links in SQL (codes r0000000 ...), each with its link_created
event, waits until analytics has them all, and adds a configuration: the default one with
each request for one of the N codes at random (a wrk Lua script), so most redirects miss
the bounded cache and cost an indexed query, and clicks spread over N links. Its ratio to
the single-link default configuration of the same run is printed too.

`--variant NAME=VALUE` adds the default and the before-commit configurations with that
setting, measured in the same runs: an A/B comparison of a change that a setting turns off.

`--soak SECONDS` runs the default configuration once, for that long, instead of the runs
(over random codes with `--links`), printing the server's RSS before the load, every 30 s
and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.registry import NAMES  # noqa: E402
from bench.support.database import Databases, databases, reconcile  # noqa: E402
from bench.support.links import (  # noqa: E402
    clicks_counted,
    code_pattern,
    seed,
    seed_links,
    unsent,
)
from bench.support.serving import BIN, CODE, asyncpg_dsn, free_port, server  # noqa: E402
from bench.support.wrk import (  # noqa: E402
    Figures,
    command,
    cpu_seconds,
    figures,
    random_codes_script,
    rss_mib,
    wrk,
)
from tests.kafka import Tansu  # noqa: E402

# The server's CPU time per request of each measurement, by configuration (microseconds).
SERVER_CPU: dict[str, list[float]] = {}
BARE = "bare Starlette 302"
DEFAULT = "encurta, 302 after commit (default)"
RSS_EVERY = 30  # seconds, in a soak


@dataclass
class Config:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    script: Path | None = None  # a wrk script choosing each request's path


def _serve(config: Config, pids: list[int] | None = None) -> AbstractContextManager[str]:
    port = free_port()
    return server([*config.argv, "--port", str(port)], port, config.env, pids)


def seed_and_deliver(config: Config, dsn: str, count: int) -> None:
    """`count` links made in SQL, then served by `config` until analytics has every
    link_created (no unsent outbox row left): their clicks count from the first one."""
    began = time.monotonic()
    asyncio.run(seed_links(dsn, count))
    print(f"seeded {count:,} links with their events in {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    with _serve(config):
        deadline = began + max(300.0, count / 500)
        while left := asyncio.run(unsent(dsn)):
            if time.monotonic() > deadline:
                raise SystemExit(f"analytics still lacks {left:,} events; giving up")
            time.sleep(1)
    print(f"analytics had them all {time.monotonic() - began:.1f} s later", flush=True)


def measure(
    config: Config, seconds: int, connections: int, dsn: str, code: str | None
) -> tuple[Figures, int, float, float, float]:
    """One measurement after a 2 s warm-up: wrk's figures, clicks committed meanwhile (of
    `code`, or of every link), the server's RSS before and after, in MiB, and its CPU time
    per request answered, in microseconds."""
    pids: list[int] = []
    with _serve(config, pids) as url:
        target = f"{url}/" if config.script else f"{url}/{CODE}"
        wrk(target, 2, connections, config.script)  # warm-up
        before = asyncio.run(clicks_counted(dsn, code))
        rss_before = rss_mib(pids[0])
        cpu_before = cpu_seconds(pids[0])
        result = wrk(target, seconds, connections, config.script)
        cpu = (cpu_seconds(pids[0]) - cpu_before) / max(result.requests, 1) * 1e6
        rss_after = rss_mib(pids[0])
        counted = asyncio.run(clicks_counted(dsn, code)) - before
    return result, counted, rss_before, rss_after, cpu


def soak(config: Config, seconds: int, connections: int, dsn: str) -> None:
    """The load for `seconds` at once, the server's RSS every RSS_EVERY seconds. The first
    mark is the baseline: before it, the pools, caches and allocator fill up."""
    pids: list[int] = []
    with _serve(config, pids) as url:
        target = f"{url}/" if config.script else f"{url}/{CODE}"
        before = asyncio.run(clicks_counted(dsn))
        print(f"soak: RSS before the load {rss_mib(pids[0]):.1f} MiB", flush=True)
        load = subprocess.Popen(
            command(target, seconds, connections, config.script),
            stdout=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()
        marks: list[float] = []
        while True:
            try:
                load.wait(timeout=max(0.0, began + RSS_EVERY * (len(marks) + 1) - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                marks.append(rss_mib(pids[0]))
                print(f"soak: {RSS_EVERY * len(marks):>4} s  RSS {marks[-1]:.1f} MiB", flush=True)
        out = load.communicate()[0]
        last = rss_mib(pids[0])
        counted = asyncio.run(clicks_counted(dsn)) - before
    growth = ""
    if marks:
        growth = f" ({last - marks[0]:+.1f} MiB since {RSS_EVERY} s, peak {max(*marks, last):.1f})"
    print(f"soak: at the end  RSS {last:.1f} MiB{growth}")
    if load.returncode:
        raise SystemExit(f"wrk failed (exit {load.returncode})")
    result = figures(out)
    print(
        f"soak: {seconds} s, {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms,"
        f" p99 {result.p99_ms:.2f} ms, errors {result.errors}; {result.requests:,} redirects "
        f"received by wrk, {counted:,} clicks committed"
    )


def _configs(
    args: argparse.Namespace, encurta_env: dict[str, str], split_env: dict[str, str], root: Path
) -> dict[str, Config]:
    encurta = [str(BIN / "encurta"), "serve"]
    bare = [str(BIN / "uvicorn"), "bench.bare_app:app", "--no-access-log", "--log-level", "warning"]
    configs = {
        BARE: Config(bare),
        DEFAULT: Config(encurta, encurta_env),
        "encurta, 302 before commit": Config(
            encurta, encurta_env | {"ENCURTA_SHORTENER__WAIT_FOR_COMMIT": "false"}
        ),
        # Split over Kafka: this process runs the shortener alone, analytics elsewhere.
        "shortener alone (Kafka), after commit": Config(encurta, encurta_env | split_env),
    }
    for variant in args.variant:
        setting = dict([variant.split("=", 1)])
        configs[f"{DEFAULT}, {variant}"] = Config(encurta, encurta_env | setting)
        configs[f"encurta, 302 before commit, {variant}"] = Config(
            encurta, encurta_env | setting | {"ENCURTA_SHORTENER__WAIT_FOR_COMMIT": "false"}
        )
    if args.links:
        script = random_codes_script(
            root / "random-codes.lua", args.links, code_pattern(args.links)
        )
        configs[random_name(args.links)] = Config(encurta, encurta_env, script)
    kept = {
        name
        for name in configs
        if name == BARE or not args.only or any(t in name for t in args.only)
    }
    if args.links and random_name(args.links) in kept:
        kept.add(DEFAULT)  # the random codes' figure is a ratio to it
    return {name: config for name, config in configs.items() if name in kept}


def random_name(links: int) -> str:
    return f"encurta, random codes over {links:,} links"


def _measure_all(
    args: argparse.Namespace, made: Databases, broker: Tansu
) -> tuple[dict[str, list[Figures]], int, int, str]:
    """Every configuration's figures, the default one's redirects served and clicks counted,
    and what reconcile says after."""
    results: dict[str, list[Figures]] = {}
    counted = served = 0
    root, urls = made.root, made.urls
    asyncio.run(seed(urls["shortener"]))
    # The Kafka configuration runs no analytics: its clicks go to a database of its
    # own, so that reconcile compares what the one-process configurations counted.
    split_url = made.migrated("shortener_split", "shortener")
    asyncio.run(seed(split_url))
    encurta_env = {f"ENCURTA_{m.upper()}__DATABASE_URL": u for m, u in urls.items()}
    encurta_env |= {"ENCURTA_DATA_DIR": str(root / "data"), "ENCURTA_LOG_LEVEL": "warning"}
    encurta_env |= dict(setting.split("=", 1) for setting in args.env)
    public_key = root / "auth-public.pem"
    public_key.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    split_env = broker.env() | {
        "ENCURTA_MODULES": "shortener",
        "ENCURTA_SHORTENER__DATABASE_URL": split_url,
        "ENCURTA_TOKENS__PUBLIC_KEY_FILE": str(public_key),
    }
    configs = _configs(args, encurta_env, split_env, root)
    dsn = asyncpg_dsn(urls["shortener"])
    if args.links:
        seed_and_deliver(configs[DEFAULT], dsn, args.links)
    if args.soak:
        name = random_name(args.links) if args.links else DEFAULT
        print(f"soak: {name}, {args.connections} connections", flush=True)
        soak(configs[name], args.soak, args.connections, dsn)
    else:
        results = {name: [] for name in configs}
        for run in range(args.runs):
            # Every other run in reverse order: no configuration always follows another.
            order = list(configs.items())
            for name, config in order[::-1] if run % 2 else order:
                scope = None if config.script else CODE
                figures_, clicks, rss_before, rss_after, cpu = measure(
                    config, args.duration, args.connections, dsn, scope
                )
                SERVER_CPU.setdefault(name, []).append(cpu)
                if name == DEFAULT:
                    counted += clicks
                    served += figures_.requests
                results[name].append(figures_)
                print(
                    f"run {run + 1}: {name}: {figures_.requests_per_second:,.0f} req/s, "
                    f"p50 {figures_.p50_ms:.2f} ms, p99 {figures_.p99_ms:.2f} ms, "
                    f"errors {figures_.errors}, RSS {rss_before:.1f} -> {rss_after:.1f} MiB, "
                    f"server CPU {cpu:.0f} us/req" + _of_single_link(name, results, args.links),
                    flush=True,
                )
    return results, served, counted, reconcile(encurta_env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every encurta configuration (an experiment: say so with the figures)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run the two one-process configurations with this setting, in the same "
        "runs: an A/B comparison (once per --variant)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the configurations whose name holds TEXT (and the bare app)",
    )
    parser.add_argument(
        "--links",
        type=int,
        default=0,
        metavar="N",
        help="seed N more links and add a run over random codes among them (default: none)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="SECONDS",
        help="instead of the runs, load the default configuration for SECONDS (over random "
        "codes with --links), printing its RSS every 30 s",
    )
    args = parser.parse_args()
    if args.soak and args.only:
        parser.error("--soak runs the default configuration alone: leave --only out")
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset: apt-get install wrk util-linux")

    broker = Tansu().start()
    try:
        with databases(NAMES) as made:
            results, served, counted, reconciled = _measure_all(args, made, broker)
    finally:
        broker.stop()

    if results:
        _summary(args, results, served, counted)
    print(reconciled)


def _of_single_link(name: str, results: dict[str, list[Figures]], links: int) -> str:
    """For the random codes' run: its ratio to the default configuration's in this run."""
    if not links or name != random_name(links):
        return ""
    ratio = results[name][-1].requests_per_second / results[DEFAULT][-1].requests_per_second
    return f", {ratio:.2f} of the single link's rate"


def _summary(
    args: argparse.Namespace, results: dict[str, list[Figures]], served: int, counted: int
) -> None:
    bare = results[BARE]
    base_rate = statistics.median(f.requests_per_second for f in bare)
    base_p99 = statistics.median(f.p99_ms for f in bare)
    print(
        f"\nmedians of {args.runs} runs, {args.duration} s each, {args.connections} "
        "connections, server on core 0, wrk on core 1"
    )
    print(
        f"{'configuration':<44} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'p99 ratio':>9} {'CPU us/req':>10}"
    )
    for name, runs in results.items():
        rate = statistics.median(f.requests_per_second for f in runs)
        p50 = statistics.median(f.p50_ms for f in runs)
        p99 = statistics.median(f.p99_ms for f in runs)
        cpu = statistics.median(SERVER_CPU.get(name) or [0.0])
        print(
            f"{name:<44} {rate:>9,.0f} {rate / base_rate:>6.2f} {p50:>7.2f} {p99:>7.2f} "
            f"{p99 / base_p99:>9.2f} {cpu:>10.0f}"
        )
    if args.links and random_name(args.links) in results:
        single = statistics.median(f.requests_per_second for f in results[DEFAULT])
        spread = statistics.median(f.requests_per_second for f in results[random_name(args.links)])
        print(
            f"\nrandom codes over {args.links:,} links / one link (default configuration): "
            f"{spread / single:.2f} (the issue asks for 0.6 or more)"
        )
    if DEFAULT in results:
        print(
            f"\ndefault configuration: {served:,} redirects received by wrk, {counted:,} "
            "clicks committed (the difference: requests in flight when wrk stopped)"
        )


if __name__ == "__main__":
    main()
