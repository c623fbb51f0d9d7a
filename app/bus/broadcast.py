"""Broadcast subscriptions: effects every process of a module needs, with no inbox.

A consumer group shares the work among a module's replicas; a cache, though, lives in each
replica. A broadcast subscription gets every event in every process (a consumer group of
its own) and runs a handler that touches no database, such as evicting a deleted link
from the redirect cache. It reads from the earliest offset, because "latest" is decided
when the group is joined, a second or more after the process is up, and an event in that
gap would be missed; events from before the process started are skipped instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from app.bus.envelope import Envelope, Undecodable, decode
from app.contracts.base import IntegrationEvent

log = logging.getLogger(__name__)

BroadcastHandler = Callable[[Sequence[Any]], Awaitable[None]]


_CLOCK_SKEW = timedelta(seconds=60)


class Broadcast:
    def __init__(
        self, module: str, handlers: Mapping[type[IntegrationEvent], BroadcastHandler]
    ) -> None:
        self.name = f"{module}-broadcast-{uuid.uuid4().hex[:12]}"
        self._since = datetime.now(UTC) - _CLOCK_SKEW
        self._contracts = {contract.type: contract for contract in handlers}
        self._handlers = {contract.type: handler for contract, handler in handlers.items()}

    @property
    def event_types(self) -> list[str]:
        return list(self._handlers)

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            # Not ours, or from before this process: skipped unread, and not worth a warning.
            if envelope.type not in self._contracts or envelope.occurred_at < self._since:
                continue
            try:
                event = decode(envelope, self._contracts, self.name)
            except Undecodable as exc:
                log.warning("broadcast %s: skipped an undecodable event: %s", self.name, exc)
                continue
            await self._handlers[envelope.type]([event])

    async def deliver_raw(self, data: bytes) -> None:
        log.warning("broadcast %s: ignored a message that is not an envelope", self.name)
