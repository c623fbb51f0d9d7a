"""How long `encurta serve` takes to answer /readyz: on a new data dir, then on the same one.

    .venv/bin/python bench/startup.py [--runs 5]

The issue's target: a second start is serving in under 5 s. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ENCURTA = Path(sys.executable).parent / "encurta"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def time_to_ready(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env["ENCURTA_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(ENCURTA), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit("encurta serve exited before it was ready")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first, again = [], []
    for _ in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="encurta-bench-"))
        root.chmod(0o755)
        try:
            first.append(time_to_ready(root / "data"))
            again.append(time_to_ready(root / "data"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"runs: {args.runs}")
    print(f"first start (initdb, roles, migrations): median {statistics.median(first):.2f} s")
    print(f"second start (same data dir):            median {statistics.median(again):.2f} s")


if __name__ == "__main__":
    main()
