"""`encurta ARGS` run in the test's process, as a user would type it: its exit status and
what it printed. The caller's fixture sets the environment (databases, data folder)."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from app.cli import main


@dataclass
class Ran:
    status: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.status}\n{self.out}\n{self.err}"


Encurta = Callable[..., Awaitable[Ran]]


def command_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Encurta:
    """`await encurta(*argv, stdin="")`: in a thread, so the test's own event loop (and
    the app it serves) keeps running; never a traceback, whatever the status."""

    def run(argv: list[str], stdin: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            return main(argv)
        except SystemExit as exc:  # argparse's usage errors
            return int(exc.code or 0)

    async def encurta(*argv: str, stdin: str = "") -> Ran:
        capsys.readouterr()
        status = await asyncio.to_thread(run, list(argv), stdin)
        captured = capsys.readouterr()
        ran = Ran(status, captured.out, captured.err)
        assert "Traceback" not in ran.err, ran
        return ran

    return encurta
