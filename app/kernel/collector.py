"""The garbage collector, tuned for a server whose heap is mostly built at start.

CPython's full collections walk every object that survived the younger ones: with the GeoIP
data, the bot patterns and the modules' objects that is a pause of tens of milliseconds,
every few thousand redirects, and it set the redirect's p99 (90 ms against 36 ms without,
bench/redirect.py's default configuration, 2 cores). What is alive once the app is built
lives as long as the process: frozen, the collector never walks it again; and the younger
generations are collected less often, since a request makes few cycles.
"""

from __future__ import annotations

import gc

# (young, middle, old): collections of a generation per collection of the one below. The
# defaults are (700, 10, 10).
THRESHOLDS = (50_000, 50, 1_000)


def settle() -> None:
    """Call once, after the app is built and before it serves."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
