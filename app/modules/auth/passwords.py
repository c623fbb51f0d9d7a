"""Password policy and hashing (argon2id through pwdlib, always off the event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.modules.auth.settings import Argon2Settings

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 256


@cache
def _common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "common_passwords.txt").read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def policy_violation(password: str) -> str | None:
    """Why a password is refused, or None. Length and commonness only (NIST SP 800-63B)."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.lower() in _common_passwords():
        return "This password is among the most common ones; choose another."
    return None


class Passwords:
    """Hashes and verifies off the event loop: a hash costs ~150 ms of CPU and 64 MiB.

    They run in a pool of their own with `max_concurrent` threads, so at most that many run
    at once, whatever the load (a cancelled request cannot free its thread before its hash
    ends); the others wait in the pool's queue, and the default executor stays free.
    """

    def __init__(self, settings: Argon2Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.time_cost,
                    memory_cost=settings.memory_cost_kib,
                    parallelism=settings.parallelism,
                ),
            )
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_concurrent, thread_name_prefix="argon2"
        )
        # Verified against when the email is unknown, so both cases cost the same.
        self._dummy_hash = self._hash.hash("encurta-dummy-password")

    async def hash(self, password: str) -> str:
        return await self._run(self._hash.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(valid, new hash when the parameters changed). `hashed=None`: unknown user."""
        if hashed is None:
            await self._run(self._hash.verify, password, self._dummy_hash)
            return False, None
        return await self._run(self._hash.verify_and_update, password, hashed)

    async def close(self) -> None:
        """Drop queued work and let the threads end (at the module's shutdown)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await asyncio.wrap_future(self._pool.submit(function, *args))
