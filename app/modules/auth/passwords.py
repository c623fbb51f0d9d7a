"""Password policy; the hashing itself (argon2id, off the event loop, in a bounded pool)
is the kernel's (app.kernel.hashing), shared with the shortener's link passwords."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from app.kernel.hashing import HashInFlight, HashQueueFull, HashSlot, Passwords

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "HashInFlight",
    "HashQueueFull",
    "HashSlot",
    "Passwords",
    "policy_violation",
]

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
