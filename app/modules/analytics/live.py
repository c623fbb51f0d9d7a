"""Live clicks: a link's clicks pushed to its owner as server-sent events.

Fed by a broadcast subscription to `link_clicked` (`Module.subscribe_every_process`), not by
the inbox consumer: the consumer group hands each click to one analytics replica, while the
owner's stream may be open on any of them; a broadcast reaches every analytics process, in
every topology (in-process: the same publish that feeds the inbox; Kafka: a consumer group
per process). So "as analytics counts them" means as analytics hears them: a click shows
when it reaches analytics, next to (not after) the commit that counts it, and a click the
inbox later drops (its link deleted meanwhile) may have shown. What is shown is what the
stats page shows of a click: time, country, device, browser, referer host, bot or not;
never the IP, its network, the visitor hash or the raw user agent.

Memory is bounded: a process holds at most `max_streams` streams (the next is answered
503), each with at most `queue_length` clicks waiting; a client too slow to read loses the
oldest, and is told how many with a `missed` event before the next click. A stream is
removed from the hub as soon as its client goes (Starlette cancels the body), and ends by
itself after `max_seconds`, when the browser reconnects and is authenticated again (a
revoked token or a lost link does not keep a stream). A deleted link ends its streams.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.contracts.shortener import LinkClicked, LinkDeleted
from app.kernel.http import mark_endless
from app.modules.analytics.enrichment import clip, describe_agent, device_class, referer_host

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
# Sent with the stream: no cache may keep it, and no proxy may buffer it (nginx reads
# X-Accel-Buffering), or the clicks would arrive in lumps.
_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class TooManyStreams(Exception):
    """This process holds as many live streams as it may."""


@dataclass(eq=False)
class Stream:
    """One client's stream of one link: the clicks it has not read yet, the oldest dropped."""

    code: str
    owner_id: UUID
    queue_length: int
    pending: deque[dict[str, Any]] = field(init=False)
    missed: int = 0
    ended: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.pending = deque(maxlen=self.queue_length)

    def push(self, click: dict[str, Any]) -> None:
        if len(self.pending) == self.queue_length:
            self.missed += 1  # the deque drops the oldest
        self.pending.append(click)
        self.wakeup.set()

    def end(self) -> None:
        self.ended = True
        self.wakeup.set()


def describe_click(event: LinkClicked) -> dict[str, Any]:
    """What the owner may see of a click, as the stats page counts it."""
    agent = describe_agent(event.user_agent or "")
    return {
        "at": event.occurred_at.isoformat(),
        "country": clip(event.country),
        "device": device_class(agent, event.is_bot),
        "browser": agent.browser,
        "referer_host": referer_host(event.referer),
        "bot": event.is_bot,
    }


class LiveClicks:
    """This process's open streams by link code, fed by the broadcast handlers below."""

    def __init__(
        self, *, queue_length: int = 100, max_streams: int = 1000, max_seconds: float = 900.0
    ) -> None:
        self.queue_length = queue_length
        self.max_streams = max_streams
        self.max_seconds = max_seconds
        self._streams: dict[str, set[Stream]] = {}
        self._count = 0

    def streams(self, code: str | None = None) -> int:
        """How many streams are open (of one link, or in all)."""
        return self._count if code is None else len(self._streams.get(code, ()))

    def open(self, code: str, owner_id: UUID) -> Stream:
        if self._count >= self.max_streams:
            raise TooManyStreams
        stream = Stream(code, owner_id, self.queue_length)
        self._streams.setdefault(code, set()).add(stream)
        self._count += 1
        return stream

    def close(self, stream: Stream) -> None:
        streams = self._streams.get(stream.code)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        self._count -= 1
        if not streams:
            del self._streams[stream.code]

    async def heard_clicks(self, events: Sequence[LinkClicked]) -> None:
        """Runs on the bus's delivery path: no I/O, and nothing at all for links nobody
        watches."""
        for event in events:
            streams = self._streams.get(event.code)
            if streams:
                click = describe_click(event)
                for stream in streams:
                    stream.push(click)

    async def heard_deletions(self, events: Sequence[LinkDeleted]) -> None:
        for event in events:
            for stream in list(self._streams.get(event.code, ())):
                stream.end()

    def response(self, stream: Stream) -> StreamingResponse:
        """The stream as a response. The stream is in the hub from `open` on, so a click
        after the response's headers reached the client is on it."""
        return _EventStream(self, stream)

    async def events(self, stream: Stream) -> AsyncIterator[str]:
        """The body of one stream, in the text/event-stream format; leaves the hub however
        it ends (the client gone, the link deleted, its time up)."""
        try:
            # First the reconnection delay: the client knows it is subscribed once it has it.
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            deadline = time.monotonic() + self.max_seconds
            while not stream.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stream.wakeup.clear()
                if not stream.pending:
                    try:
                        async with asyncio.timeout(min(KEEPALIVE_SECONDS, left)):
                            await stream.wakeup.wait()
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                if stream.missed:
                    missed, stream.missed = stream.missed, 0
                    yield _event("missed", {"clicks": missed})
                while stream.pending:
                    yield _event("click", stream.pending.popleft())
        finally:
            self.close(stream)


class _EventStream(StreamingResponse):
    """Leaves the hub however the response ends, even when the client went before its body
    began (then the body's generator never ran, and its `finally` with it)."""

    def __init__(self, hub: LiveClicks, stream: Stream) -> None:
        super().__init__(
            hub.events(stream), media_type="text/event-stream", headers=_STREAM_HEADERS
        )
        self._hub = hub
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mark_endless(scope)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.close(self._stream)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
