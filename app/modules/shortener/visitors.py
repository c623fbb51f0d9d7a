"""Visitor hashes: what "unique" counts, without a way back to the address.

A visitor hash is a keyed hash of IP and user agent. Beside it the analytics store the /24
(or /48) and the user agent, so whoever holds the key can try the 256 addresses of the /24
and recover the exact IPv4 in milliseconds. So the key is never stored: each UTC day's key
is HMAC-SHA256(secret, day), computed in memory, the same on every replica that has the
secret, and dropped when the day ends (a timer, not the next click). No database holds key
material; the secret lives in the setting or a 0600 file under DATA_DIR/keys.

What that guarantees, and what not: the databases and their backups alone cannot narrow a
hash to an address. Whoever has the secret (the host's key file or the setting) can derive
any day's key again and recover addresses from stored hashes: guard it like auth's signing
key. Replacing the secret makes every earlier hash unlinkable from then on (the uniques of
the day of the change count a returning visitor twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from app.modules.shortener.settings import ShortenerSettings

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 32
_CONTEXT = b"encurta visitor key v1 "  # domain separation: this secret derives nothing else


class VisitorSecretError(RuntimeError):
    """The secret is unusable; the message never contains it."""


def secret_file(data_dir: Path) -> Path:
    return data_dir / "keys" / "shortener-visitor-secret"


def load_visitor_secret(settings: ShortenerSettings, data_dir: Path) -> bytes:
    """The configured secret, else the one generated into DATA_DIR/keys on first start."""
    if settings.visitor_secret is not None:
        return _checked(
            settings.visitor_secret.get_secret_value(), "ENCURTA_SHORTENER__VISITOR_SECRET"
        )
    path = secret_file(data_dir)
    if path.exists():
        return _read(path)
    return _generate(path)


def _checked(secret: str, source: str) -> bytes:
    secret = secret.strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise VisitorSecretError(
            f"{source} must be at least {MIN_SECRET_LENGTH} characters (it has {len(secret)}): "
            "generate one with `openssl rand -hex 32`"
        )
    return secret.encode()


def _read(path: Path) -> bytes:
    try:
        return _checked(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise VisitorSecretError(f"{path} cannot be read: {type(exc).__name__}") from None


def _generate(path: Path) -> bytes:
    secret = secrets.token_hex(32)  # the text is the secret: it can be copied into the setting
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: two processes starting at once must not overwrite each other's secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    log.info(
        "generated a new visitor-hash secret at %s (replicas of the shortener must share "
        "one: give them all ENCURTA_SHORTENER__VISITOR_SECRET)",
        path,
    )
    return secret.encode()


def day_key(secret: bytes, day: date) -> bytes:
    return hmac.digest(secret, _CONTEXT + day.isoformat().encode(), "sha256")


def visitor_hash(key: bytes, ip: str | None, user_agent: str) -> str:
    return hashlib.blake2b(
        f"{ip or ''}\0{user_agent}".encode(), key=key, digest_size=16
    ).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class VisitorKeys:
    """The key of the current UTC day, in memory only.

    `start()` loads the secret and starts a timer that drops the key at each midnight UTC;
    `for_day()` derives a day's key when first asked, so a clock that passed midnight
    before the timer fired never gets yesterday's key either."""

    def __init__(
        self, load_secret: Callable[[], bytes], now: Callable[[], datetime] = _now
    ) -> None:
        self._load_secret = load_secret
        self._now = now
        self._secret: bytes | None = None
        self._day: date | None = None
        self._key: bytes | None = None
        self._timer: asyncio.Task[None] | None = None

    @property
    def day(self) -> date | None:
        """The day whose key is held, None when none is."""
        return self._day

    def for_day(self, day: date) -> bytes:
        if self._day != day or self._key is None:
            if self._secret is None:
                raise RuntimeError("the shortener's visitor keys are not started")
            self._day, self._key = day, day_key(self._secret, day)
        return self._key

    def forget_past(self) -> None:
        """Drop the key unless it is today's."""
        if self._day is not None and self._day < self._now().date():
            self._day = self._key = None

    async def start(self) -> None:
        self._secret = self._load_secret()
        # Armed with the time of start, not of the task's first turn.
        self._timer = asyncio.create_task(
            self._forget_at_midnight(self._now()), name="visitor-keys"
        )

    async def stop(self) -> None:
        """Stop the timer and drop the key (a redirect still answered while the process
        stops derives it again: the secret stays)."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        self._day = self._key = None

    async def _forget_at_midnight(self, now: datetime) -> None:
        while True:
            midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
            # A little past midnight, so the clock read after the sleep is the new day.
            await asyncio.sleep((midnight - now).total_seconds() + 0.5)
            self.forget_past()
            now = self._now()
