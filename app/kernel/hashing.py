"""Password hashing off the event loop, in a bounded pool (argon2id through pwdlib).

Any module that keeps secrets people type (auth's account passwords, the shortener's link
passwords) hashes them here, each module with its own pool and its own `Argon2Settings`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.kernel.settings import Argon2Settings

__all__ = ["HashInFlight", "HashQueueFull", "HashSlot", "Passwords"]

T = TypeVar("T")


class HashInFlight(Exception):
    """This client already has a hash queued or running: one at a time per client."""


class HashQueueFull(Exception):
    """`max_queued` hashes already wait for a thread: no more are taken."""


class HashSlot:
    """The right of one client to one hash, from `Passwords.slot`. A context manager.

    Held until that hash has ended in its thread, not until the request does: a client
    that hangs up cannot queue another hash beside the one still running. Left without
    hashing (the request was refused before), it is given back at once.
    """

    def __init__(self, passwords: Passwords, client: str) -> None:
        self._passwords = passwords
        self._client = client
        self._future: Future[Any] | None = None

    def _submitted(self, future: Future[Any]) -> None:
        if self._future is not None:
            raise RuntimeError("one hash per slot")
        self._future = future
        # Called in the worker thread when the hash ends, or at once if it already has.
        future.add_done_callback(lambda _: self._passwords._release(self._client))

    def __enter__(self) -> HashSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._future is None:
            self._passwords._release(self._client)


class Passwords:
    """Hashes and verifies off the event loop: a hash costs ~150 ms of CPU and 64 MiB.

    They run in a pool of their own with `max_concurrent` threads, so at most that many run
    at once, whatever the load (a cancelled request cannot free its thread before its hash
    ends), and the default executor stays free. Each hash needs a slot (`slot`): one per
    client at a time, and no more than `max_concurrent + max_queued` in all, so at most
    `max_queued` wait in the pool's queue and a newcomer waits for that many, not for the
    length of a flood.
    """

    def __init__(self, settings: Argon2Settings, *, unknown_users: bool = True) -> None:
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
        self._capacity = settings.max_concurrent + settings.max_queued
        self._lock = threading.Lock()  # the slots are given back in the worker threads
        self._clients: set[str] = set()  # those holding a slot
        # Verified against when the user is unknown, so both cases cost the same; made only
        # where there are users (one hash at start-up).
        self._dummy_hash = self._hash.hash("encurta-dummy-password") if unknown_users else ""

    def slot(self, client: str) -> HashSlot:
        """Take `client`'s one slot, or raise HashInFlight or HashQueueFull. No await:
        of concurrent requests no more get one than the bounds allow."""
        with self._lock:
            if client in self._clients:
                raise HashInFlight
            if len(self._clients) >= self._capacity:
                raise HashQueueFull
            self._clients.add(client)
        return HashSlot(self, client)

    def in_flight(self) -> int:
        """Slots held: hashes queued or running, and requests about to ask for one."""
        with self._lock:
            return len(self._clients)

    async def hash(self, password: str, *, slot: HashSlot) -> str:
        return await self._run(slot, self._hash.hash, password)

    async def verify(
        self, password: str, hashed: str | None, *, slot: HashSlot
    ) -> tuple[bool, str | None]:
        """(valid, new hash when the parameters changed). `hashed=None`: unknown user."""
        if hashed is None:
            if not self._dummy_hash:
                raise ValueError("no hash to verify against (built with unknown_users=False)")
            await self._run(slot, self._hash.verify, password, self._dummy_hash)
            return False, None
        return await self._run(slot, self._hash.verify_and_update, password, hashed)

    async def close(self) -> None:
        """Drop queued work and let the threads end (at the module's shutdown)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _release(self, client: str) -> None:
        with self._lock:
            self._clients.discard(client)

    async def _run(self, slot: HashSlot, function: Callable[..., T], *args: str) -> T:
        future = self._pool.submit(function, *args)
        slot._submitted(future)
        return await asyncio.wrap_future(future)
