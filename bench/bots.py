"""Microseconds per bot check: a browser's user agent against hostile ones, crawlerdetect
on Python `re` (the old check) against its lists on RE2 (app/modules/shortener/bots.py).

    .venv/bin/python bench/bots.py [--runs 400] [--old-runs 20]

Every call gets a different agent (a counter in its last characters), as an attacker
defeats caches; the lru_cache of `bot_reason` is not in the path. Printed: the median and
the 99th percentile per call (CPU time of this thread, so that other processes on a busy
machine weigh less), and each agent's ratio to the browser's median.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLERS

from app.modules.shortener.bots import BotPatterns

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_rnd = random.Random(1)
_FRAGMENTS = [re.sub(r"[\\^$]", "", p) for p in CRAWLERS]


def _fixed(agent: str) -> Callable[[int], str]:
    return lambda i: f"{agent[:-6]}{i:06d}"


def _letters(n: int, alphabet: str) -> str:
    return "".join(_rnd.choice(alphabet) for _ in range(n))


def _prefixes(i: int) -> str:  # a new one each call: new DFA states for RE2 to build
    parts = (f[: _rnd.randint(1, max(1, len(f) - 1))] for f in _rnd.sample(_FRAGMENTS, 300))
    return "".join(parts)[:512]


AGENTS: dict[str, Callable[[int], str]] = {
    "browser (Chrome)": _fixed(BROWSER),
    "Googlebot": _fixed(GOOGLEBOT),
    "512 x 'a'": _fixed("a" * 512),
    "512 random alphanumerics": _fixed(_letters(512, string.ascii_lowercase + string.digits)),
    "browser + 400 random letters": _fixed(BROWSER + " " + _letters(400, string.ascii_letters)),
    "512 printable, new each call": lambda i: _letters(512, string.printable[:94]),
    "crawler-pattern prefixes, new each call": _prefixes,
    "128 separate exclusions ('rv: ' x 128)": _fixed("rv: " * 128),
}


def measure(
    check: Callable[[str], object], make: Callable[[int], str], runs: int, first: int = 0
) -> list[float]:
    agents = [make(i) for i in range(first, first + runs)]
    times = []
    for agent in agents:
        start = time.thread_time_ns()
        check(agent)
        times.append((time.thread_time_ns() - start) / 1000)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="calls per agent, RE2")
    parser.add_argument("--old-runs", type=int, default=20, help="calls per agent, Python re")
    args = parser.parse_args()

    start = time.perf_counter()
    patterns = BotPatterns()
    print(
        f"RE2: {patterns.programs} programs built in {(time.perf_counter() - start) * 1e3:.0f} ms"
    )
    reference = CrawlerDetect()

    def old(agent: str) -> object:
        return reference.getMatches() if reference.isCrawler(agent) else None

    checks = {
        "old: crawlerdetect, Python re": (old, args.old_runs),
        "new: RE2": (patterns.reason, args.runs),
    }
    for label, (check, runs) in checks.items():
        for make in AGENTS.values():  # warm-up: compiled patterns, DFA states
            measure(check, make, min(runs, 20), first=900_000)  # other agents: no cache hit
        print(f"\n{label} (µs per call, {runs} calls per agent)")
        print(f"  {'agent':42s} {'median':>9s} {'p99':>9s} {'x browser':>10s}")
        base = 0.0
        for name, make in AGENTS.items():
            times = measure(check, make, runs)
            median = statistics.median(times)
            base = base or median
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"  {name:42s} {median:9.1f} {p99:9.1f} {median / base:9.1f}x")


if __name__ == "__main__":
    main()
