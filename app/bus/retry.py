"""How long to wait before trying again: the one backoff of every retry loop.

Relays, consumers and the click batcher all retry against a database or a broker that may
be away; they wait the same way, so that many workers failing together spread out again
instead of retrying in lockstep.
"""

from __future__ import annotations

import random


def backoff(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """The delay before retry `attempt` (counting from 1): exponential from `base_seconds`,
    capped at `max_seconds`, with full jitter (anywhere from zero to that ceiling)."""
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
