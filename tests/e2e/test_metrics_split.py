"""Split over processes, each serves its own `GET /metrics`, of its own modules only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.registry import NAMES
from tests.conftest import truncate_all
from tests.e2e.deployment import Cluster
from tests.kafka import Tansu
from tests.kernel.test_metrics import TOKEN, Samples, parse, value
from tests.support.accounts import bearer, new_account, shorten
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_each_process_of_the_split_topology_serves_its_own_metrics(
    database_urls: dict[str, str], data_dir: Path, tansu: Tansu
) -> None:
    await truncate_all(database_urls)  # the databases are the session's: start empty
    cluster = Cluster(
        "split",
        database_urls,
        data_dir,
        kafka_env=tansu.env(),
        settings={"ENCURTA_METRICS__TOKEN": TOKEN},
    ).start()
    try:
        async with cluster.client() as client:
            account = await new_account(client)
            code = (await shorten(client, account))["code"]
            assert (await client.get(f"/{code}")).status_code == 302

        async def scrape(module: str) -> Samples:
            url = f"{cluster.processes[module].url}/metrics"
            async with httpx.AsyncClient(timeout=30) as direct:  # a loaded machine
                response = await direct.get(url, headers=bearer(TOKEN))
            assert response.status_code == 200, response.text
            return parse(response.text)

        analytics: Samples = await eventually(
            lambda: scrape("analytics"),
            lambda s: bool(value(s, "encurta_consumer_batch_size_count", module="analytics")),
            "the click consumed by analytics, over Kafka",
        )
        # A click answered before its commit (the commit timeout, on a loaded machine) is
        # recorded a moment after its 302: wait for it rather than race it.
        await eventually(
            lambda: scrape("shortener"),
            lambda s: value(s, "encurta_shortener_clicks_recorded_total") == 1,
            "the click recorded by the shortener",
        )
        scraped = {module: await scrape(module) for module in NAMES}
    finally:
        cluster.stop()

    for module, samples in scraped.items():
        up = {labels["module"] for labels, _ in samples["encurta_database_up"]}
        assert up == {module}, f"{module}'s process reports {up}"
    shortener = scraped["shortener"]
    assert value(shortener, "encurta_http_requests_total", route="/{code}", status="302") == 1
    assert value(shortener, "encurta_shortener_clicks_recorded_total") == 1
    assert value(analytics, "encurta_shortener_clicks_recorded_total") is None
    assert value(scraped["auth"], "encurta_http_requests_total", route="/api/auth/login") == 1
    assert value(scraped["auth"], "encurta_outbox_backlog", module="auth") is not None
