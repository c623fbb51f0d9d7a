"""wrk, pinned to core 1, and what it says; a Lua script for random codes; a process's RSS."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _found(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"wrk said something unexpected (no {pattern!r}):\n{text}")
    return match


def figures(out: str) -> Figures:
    """The figures in wrk's `--latency` report."""
    rate = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _found(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = _found(r"99%\s+([\d.]+)(us|ms|s)", out)
    total = int(_found(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return Figures(rate, _ms(*p50.groups()), _ms(*p99.groups()), total, failed)


def command(url: str, seconds: int, connections: int, script: Path | None = None) -> list[str]:
    """wrk on core 1, one thread; with `script`, its request() chooses each path."""
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script is not None:  # another sequence of codes each time: the warm-up's are cached
        argv += ["--", str(next(_SEEDS))]
    return argv


_SEEDS = itertools.count(20261125)


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> Figures:
    out = subprocess.run(
        command(url, seconds, connections, script), capture_output=True, text=True, check=True
    ).stdout
    return figures(out)


# wrk calls request() for each request when a script defines it (LuaJIT: about a µs, on
# wrk's own core). `init` takes the seed after `--` on wrk's command line.
_RANDOM_CODES = """\
local count = {count}
init = function(args)
    math.randomseed(tonumber(args[1]) or 1)
end
request = function()
    return wrk.format("GET", "/" .. string.format("{pattern}", math.random(0, count - 1)))
end
"""


def random_codes_script(path: Path, count: int, pattern: str) -> Path:
    """A wrk script whose every request asks for one of `count` codes at random, code
    number n being `pattern % n` (a C format, as Lua's string.format reads it)."""
    path.write_text(_RANDOM_CODES.format(count=count, pattern=pattern))
    return path


def cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used so far, user and system (/proc/PID/stat). Per
    request, it is steadier than the rate on a loaded machine: time the server waited for
    a core is not in it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """The resident memory of process `pid` (VmRSS in /proc/PID/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


# wrk waits delay() ms after each answer before a connection's next request: with c
# connections, about c * 1000 / delay requests a second (a little less: each answer's
# latency adds to the wait).
_PACED = """\
delay = function()
    return {delay_ms}
end
"""

PACED_CONNECTIONS = 32


def pace_ms(rate: int, latency_ms: float = 0.0) -> int:
    """The pause after each answer that makes about `rate` requests a second."""
    return max(1, round(PACED_CONNECTIONS * 1000 / rate - latency_ms))


def paced_script(path: Path, rate: int, latency_ms: float = 0.0) -> Path:
    """A wrk script that holds the load to about `rate` requests a second over
    PACED_CONNECTIONS connections, answers taking `latency_ms`."""
    path.write_text(_PACED.format(delay_ms=pace_ms(rate, latency_ms)))
    return path
