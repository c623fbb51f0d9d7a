"""Crashes under load: SIGKILLs on a seeded random schedule, and every 302 counted once.

    .venv/bin/python bench/faults.py [--transport inprocess|kafka|both] [--seeds 10]
        [--first-seed 1] [--clicks 5000]

For each seed, 16 clients click 4 links (each request has its own id in its user agent)
until --clicks 302s have arrived, while the seed's schedule SIGKILLs 2 to 4 times, each
after a random number of 302s, and restarts the victim after a random 0.2-2 s:
- inprocess: encurta as one process (all modules, in-process bus): the victim is it;
- kafka: one process per module over Kafka (a Tansu broker whose log is in a moto S3 server,
  so a broker SIGKILL is a crash, not a wiped disk; topics of one partition): the victim is
  the shortener, analytics or the broker.
Then, once analytics holds what the shortener counted (polled; 5 min guard), each click is
looked up: a 302 received must be stored exactly once (lost: not at all; duplicated: more
than once); a request without an answer (its connection broke) may be stored once or not
at all, never twice; the shortener's count per link must equal analytics' total; and
`encurta reconcile` must find no difference. The databases are an embedded PostgreSQL
(fsync off: it is never the one killed here).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.registry import NAMES  # noqa: E402
from bench.support.database import Databases, databases, reconcile  # noqa: E402
from bench.support.durable_broker import durable_tansu  # noqa: E402
from tests.conftest import truncate_all  # noqa: E402
from tests.e2e.clicking import Clicks, converged  # noqa: E402
from tests.e2e.deployment import Cluster  # noqa: E402
from tests.kafka import Tansu  # noqa: E402
from tests.support.accounts import new_account, shorten  # noqa: E402

LINKS = 4
TARGETS = {"inprocess": ("encurta",), "kafka": ("shortener", "analytics", "broker")}
# The durable broker reads and writes each batch through moto's S3 (a Python server): one
# partition per topic keeps analytics' fetches and offset commits few, so a run converges in
# a minute or two rather than ten (1,000 events on 4 of 6 partitions: consumed in 6.4 s, on
# one: 0.4 s). The product's partitioning is not what this bench checks.
KAFKA_SETTINGS = {"ENCURTA_BUS__KAFKA__PARTITIONS": "1"}
LOAD_DEADLINE = 600.0  # guards: the waits end on events, these only stop a hang
CONVERGE_DEADLINE = 600.0
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class Kill:
    at: int  # after this many 302s
    target: str
    down: float  # seconds before the restart

    def __str__(self) -> str:
        return f"{self.target}@{self.at}+{self.down:.1f}s"


def schedule(transport: str, seed: int, clicks: int) -> list[Kill]:
    rng = random.Random(f"{transport}:{seed}")
    points = sorted(rng.sample(range(clicks // 10, clicks * 85 // 100), rng.randint(2, 4)))
    return [
        Kill(point, rng.choice(TARGETS[transport]), round(rng.uniform(0.2, 2.0), 1))
        for point in points
    ]


@dataclass(frozen=True)
class Row:
    seed: int
    transport: str
    kills: list[Kill]
    clicks: int  # 302s received
    unanswered: int
    unanswered_counted: int
    refused: int
    lost: int
    duplicated: int
    phantom: int  # stored clicks no request of ours made
    agree: bool  # the shortener's count per link equals analytics' total
    reconciled: bool
    converge_seconds: float
    seconds: float

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.phantom) and self.agree and self.reconciled


HEADER = (
    f"{'seed':>4} {'transport':<9} {'clicks':>6} {'unanswered':>10} {'(counted)':>9} "
    f"{'refused':>7} {'lost':>4} {'duplicated':>10} {'phantom':>7} {'agree':>5} "
    f"{'reconcile':>9} {'converge':>8} {'run':>5}  kills (victim@302s+down)"
)


def line(row: Row) -> str:
    return (
        f"{row.seed:>4} {row.transport:<9} {row.clicks:>6} {row.unanswered:>10} "
        f"{row.unanswered_counted:>9} {row.refused:>7} {row.lost:>4} {row.duplicated:>10} "
        f"{row.phantom:>7} {'yes' if row.agree else 'NO':>5} "
        f"{'ok' if row.reconciled else 'DIFFERS':>9} {row.converge_seconds:>7.0f}s "
        f"{row.seconds:>4.0f}s  {', '.join(map(str, row.kills))}"
    )


async def crash(cluster: Cluster, broker: Tansu | None, kill: Kill) -> None:
    if kill.target == "broker":
        assert broker is not None
        broker.kill()
        await asyncio.sleep(kill.down)
        await asyncio.to_thread(broker.start)
        return
    victim = cluster.processes["shortener" if kill.target == "encurta" else kill.target]
    victim.kill()
    await asyncio.sleep(kill.down)
    await asyncio.to_thread(functools.partial(victim.start, timeout=START_TIMEOUT))


def reconcile_env(cluster: Cluster, made: Databases, data: Path) -> dict[str, str]:
    bus = {k: v for k, v in cluster.processes["shortener"].env.items() if "_BUS__" in k}
    urls = {f"ENCURTA_{m.upper()}__DATABASE_URL": u for m, u in made.urls.items()}
    return bus | urls | {"ENCURTA_DATA_DIR": str(data), "ENCURTA_LOG_LEVEL": "warning"}


async def run(
    transport: str,
    seed: int,
    clicks: int,
    made: Databases,
    broker: Tansu | None,
    converge_deadline: float,
) -> Row:
    started = time.monotonic()
    plan = schedule(transport, seed, clicks)
    await truncate_all(made.urls)
    data = made.root / f"{transport}-{seed}"
    topology = "inprocess" if transport == "inprocess" else "split"
    kafka = broker.env() | KAFKA_SETTINGS if broker else None
    cluster = Cluster(topology, made.urls, data, kafka_env=kafka)
    try:
        for process in dict.fromkeys(cluster.processes.values()):  # slower than tests allow
            await asyncio.to_thread(functools.partial(process.start, timeout=START_TIMEOUT))
        async with cluster.client() as client:
            account = await new_account(client)
            codes = [
                (await shorten(client, account, f"https://example.com/{n}"))["code"]
                for n in range(LINKS)
            ]
        load = Clicks(cluster.processes["shortener"].url, codes).start()
        try:
            for kill in plan:
                await load.until(
                    lambda at=kill.at: len(load.received) >= at, LOAD_DEADLINE, str(kill)
                )
                await crash(cluster, broker, kill)
            await load.until(lambda: len(load.received) >= clicks, LOAD_DEADLINE, "the end")
        finally:
            await load.stop()
        final, converge_seconds = await converged(made.urls, codes, converge_deadline)
        agree = final.converged
        said = await asyncio.to_thread(reconcile, reconcile_env(cluster, made, data / "check"))
        # reconcile sends what a relay left unsent: the clicks as finally stored.
        final, _ = await converged(made.urls, codes, CONVERGE_DEADLINE)
    finally:
        await asyncio.to_thread(cluster.stop)
    received = {request for _, request in load.received}
    unanswered = {request for _, request in load.unanswered}
    if "(exit 0)" not in said:
        print(f"     seed {seed}: {said}", flush=True)
    return Row(
        seed=seed,
        transport=transport,
        kills=plan,
        clicks=len(load.received),
        unanswered=len(unanswered),
        unanswered_counted=sum(1 for request in unanswered if final.stored[request]),
        refused=load.refused,
        lost=sum(1 for request in received if not final.stored[request]),
        duplicated=sum(times - 1 for times in final.stored.values() if times > 1),
        phantom=sum(1 for r in final.stored if r not in received and r not in unanswered),
        agree=agree and final.converged,
        reconciled="(exit 0)" in said,
        converge_seconds=converge_seconds,
        seconds=time.monotonic() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["inprocess", "kafka", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=10, help="runs per transport")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--clicks", type=int, default=5000, help="302s per run")
    parser.add_argument(
        "--converge-seconds",
        type=float,
        default=CONVERGE_DEADLINE,
        help="longest wait for analytics to agree with the shortener before reconcile",
    )
    args = parser.parse_args()
    wait = args.converge_seconds
    transports = ["inprocess", "kafka"] if args.transport == "both" else [args.transport]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows: list[Row] = []
    print(HEADER, flush=True)
    with databases(NAMES, durable=False) as made:
        for transport in transports:
            if transport == "kafka":
                with durable_tansu() as broker:
                    for seed in seeds:
                        row = run(transport, seed, args.clicks, made, broker, wait)
                        rows.append(asyncio.run(row))
                        print(line(rows[-1]), flush=True)
            else:
                for seed in seeds:
                    rows.append(asyncio.run(run(transport, seed, args.clicks, made, None, wait)))
                    print(line(rows[-1]), flush=True)
    total = sum(row.clicks for row in rows)
    bad = [row.seed for row in rows if not row.ok]
    print(
        f"{len(rows)} runs, {sum(len(row.kills) for row in rows)} kills, {total:,} clicks: "
        f"{sum(row.lost for row in rows)} lost, {sum(row.duplicated for row in rows)} "
        f"duplicated" + (f"; FAILED seeds {bad}" if bad else "; every run ok"),
        flush=True,
    )
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
