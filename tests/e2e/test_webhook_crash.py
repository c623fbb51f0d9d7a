"""A SIGKILL of the process sending webhooks, mid-stream, loses no event and gives none a
second id: every link made is told to the receiver (at least once), each under one
webhook-id, so a receiver that dedupes by id sees each event once.

Run two ways: the one-process deployment killed (API and worker with it), and in the split
deployment over Kafka the webhooks process alone, while links go on being made.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.conftest import truncate_all
from tests.e2e.deployment import Cluster
from tests.kafka import Tansu
from tests.support.accounts import Account, new_account
from tests.support.receiver import Receiver

pytestmark = pytest.mark.integration

KILL_AFTER = 15  # link.created requests the receiver has had when the kill comes
DEADLINE = 90.0  # a guard against a hang, not a measure

SETTINGS = {
    "ENCURTA_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
    "ENCURTA_WEBHOOKS__RETRY_SCHEDULE_SECONDS": "0.2,0.5,1,1,1,1,1,1,1,1",
    "ENCURTA_WEBHOOKS__POLL_SECONDS": "0.05",
    # The lease of a delivery taken by the killed process ends 2 * 1 + 5 s later.
    "ENCURTA_WEBHOOKS__TIMEOUT_SECONDS": "1",
}


class Creator:
    """Makes links one after another; keeps the codes whose 201 arrived."""

    def __init__(self, client: httpx.AsyncClient, account: Account) -> None:
        self.client = client
        self.account = account
        self.codes: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Creator:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            with contextlib.suppress(httpx.HTTPError):
                made = await self.client.post(
                    "/api/links",
                    json={"url": f"https://example.com/{n}"},
                    headers=self.account.headers,
                )
                if made.status_code == 201:
                    self.codes.append(made.json()["code"])
                    continue
            await asyncio.sleep(0.05)  # the process is down: try again shortly


async def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    assert callable(condition)
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not so after {DEADLINE:.0f} s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("topology", ["inprocess", "split"])
async def test_every_link_created_reaches_the_receiver_under_one_id_across_a_sigkill(
    topology: str, database_urls: dict[str, str], data_dir: Path, tansu: Tansu
) -> None:
    await truncate_all(database_urls)
    cluster = Cluster(topology, database_urls, data_dir, tansu.env(), SETTINGS).start()
    with Receiver() as receiver:
        receiver.delay = 0.1  # so that requests are in flight when the kill comes
        try:
            async with cluster.client() as client:
                account = await new_account(client)
                made = None
                deadline = time.monotonic() + DEADLINE
                while made is None or made.status_code != 201:  # once webhooks admits it
                    assert time.monotonic() < deadline, made and made.text
                    await asyncio.sleep(0.1)
                    made = await client.post(
                        "/api/webhooks",
                        json={"url": receiver.url, "events": ["link.created"]},
                        headers=account.headers,
                    )
                secret = made.json()["secret"]

                creator = Creator(client, account).start()
                try:
                    await wait_for(
                        lambda: len(receiver.snapshot()) >= KILL_AFTER, "deliveries going"
                    )
                    cluster.processes["webhooks"].kill()
                    before = len(creator.codes)
                    if topology == "split":  # links go on being made meanwhile
                        await wait_for(lambda: len(creator.codes) >= before + 10, "links made")
                    cluster.processes["webhooks"].start()
                    await wait_for(lambda: len(creator.codes) >= before + 20, "links made")
                finally:
                    await creator.stop()

                def told() -> set[str]:
                    return {p["data"]["code"] for _, p in receiver.accepted(secret)}

                await wait_for(lambda: set(creator.codes) <= told(), "every link told of")
        finally:
            cluster.stop()

        ids_per_code: defaultdict[str, set[str]] = defaultdict(set)
        for webhook_id, body in receiver.accepted(secret):  # every signature verified
            assert body["type"] == "link.created"
            ids_per_code[body["data"]["code"]].add(webhook_id)

    requests = len(receiver.snapshot())
    print(f"{topology}: {len(creator.codes)} links, {requests} requests, {len(ids_per_code)} ids")
    assert len(creator.codes) >= KILL_AFTER + 20
    assert set(creator.codes) <= set(ids_per_code)
    assert {code: ids for code, ids in ids_per_code.items() if len(ids) != 1} == {}
