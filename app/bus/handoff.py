"""The hand-off: outbox rows a writer passes straight to its module's relay once committed.

A relay takes rows back from the outbox table by claiming them: an UPDATE per row, and the
payload read again. For the rows of a hot writer (the click batcher) that cost PostgreSQL
more than writing them. So such a writer inserts its rows already leased to the running
relay (`lease()`), and once they have committed hands their envelopes over (`committed()`):
the relay publishes them from memory, with nothing decoded, and then deletes them. They are
not kept for `outbox_retention_seconds` as claimed rows are: marking a row sent writes a
new version of it and its index entries, the largest cost per click left in the outbox.
Their effect is kept where it lands (a click's row in analytics is its inbox entry).

Nothing changes for a crash: a row handed to a relay that dies is still in the table,
unsent, and is claimed by another relay (or a restart) once its lease has expired, as a row
whose publish a crash cut short. While no relay runs, or while the one that runs already
holds `limit` rows, `lease()` says None and the writer's rows are written unleased, to be
claimed like any other.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from uuid import UUID

from app.bus.envelope import Envelope


@dataclass(frozen=True)
class Lease:
    """What to write hot rows under: `claimed_by`, and for how long (`claimed_until`)."""

    relay: UUID
    seconds: float


class HandOff:
    def __init__(self, limit: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        """`limit`: how many rows may wait for the relay (0: none, every row is claimed)."""
        self._limit = limit
        self._clock = clock
        self._lease: Lease | None = None
        self._declared: Collection[str] | None = None
        self._wake: Callable[[], None] = lambda: None
        self._ids: list[int] = []
        self._envelopes: list[Envelope] = []
        self._arrived: list[float] = []  # when each row was handed over, oldest first

    def open(
        self, lease: Lease, declared: Collection[str] | None, wake: Callable[[], None]
    ) -> None:
        """A relay starts taking rows: those of the `declared` event types (None: any)."""
        self._lease, self._declared, self._wake = lease, declared, wake

    def close(self) -> None:
        """The relay stops: rows it did not publish stay leased in the table, and the relay
        gives its leases back as it stops."""
        self._lease = None
        self._wake = lambda: None
        self._ids, self._envelopes, self._arrived = [], [], []

    def lease(self, event_type: str) -> Lease | None:
        """The lease to write rows of `event_type` under, or None: write them unleased."""
        if self._lease is None or len(self._ids) >= self._limit:
            return None
        if self._declared is not None and event_type not in self._declared:
            return None  # the relay would not claim it either: it waits for one that does
        return self._lease

    def committed(self, lease: Lease, ids: Sequence[int], envelopes: Sequence[Envelope]) -> None:
        """The rows `ids`, committed under `lease`, and their `envelopes` (each row's
        event, in the same order): the relay's to publish, if it still holds that lease
        (else the rows wait for its expiry in the table)."""
        if lease != self._lease or not ids:
            return
        self._ids.extend(ids)
        self._envelopes.extend(envelopes)
        self._arrived.extend([self._clock()] * len(ids))
        self._wake()

    def take(self, limit: int) -> tuple[list[int], list[Envelope]]:
        """At most `limit` of the rows handed over and their envelopes, oldest first.

        Rows that waited half their lease are let go, not taken: their lease is not renewed
        while they wait, and once it expires a claim would send them a second time. They
        are claimed then, once (a relay this far behind has a slow consumer to spare)."""
        if self._lease is not None:
            stale = bisect.bisect_right(self._arrived, self._clock() - self._lease.seconds / 2)
            del self._ids[:stale], self._envelopes[:stale], self._arrived[:stale]
        ids, envelopes = self._ids[:limit], self._envelopes[:limit]
        del self._ids[:limit], self._envelopes[:limit], self._arrived[:limit]
        return ids, envelopes

    def __len__(self) -> int:
        return len(self._ids)
