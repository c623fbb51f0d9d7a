"""`GET /metrics` (app/kernel/metrics.py): Prometheus' text format, behind a bearer token,
with requests by route template, the click batcher's, the bus's and the pools' series."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.config import Settings
from app.kernel.metrics import MetricsSettings, RequestMeter
from app.registry import NAMES
from tests.conftest import AppFactory
from tests.kernel.test_health import CLOSED, serve
from tests.support.accounts import PASSWORD, bearer, new_account, shorten
from tests.support.problems import assert_problem
from tests.support.waiting import eventually
from tests.test_serve import Server

TOKEN = "scrape-me-please"
ON = MetricsSettings(token=SecretStr(TOKEN))

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(body: str) -> Samples:
    """Every sample by its name (`..._total`, `..._bucket`...), with its labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for found, number in samples.get(name, []):
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            return number
    return None


async def test_metrics_count_requests_by_route_template_clicks_and_the_bus(
    app_client: AppFactory,
) -> None:
    async with app_client(metrics=ON) as client:
        account = await new_account(client)
        link = await shorten(client, account)
        redirect = await client.get(f"/{link['code']}")
        assert redirect.is_redirect, redirect.text
        missing = await client.get("/api/links/nosuchcode", headers=account.headers)
        assert missing.status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404

        # The click is committed in a group, then delivered to analytics' consumer.
        samples: Samples = await eventually(
            lambda: scrape(client),
            lambda s: bool(value(s, "encurta_consumer_batch_size_count", module="analytics")),
            "the click committed and delivered",
        )

    def requests(route: str, status: int, method: str = "GET") -> float | None:
        return value(
            samples, "encurta_http_requests_total", route=route, status=str(status), method=method
        )

    assert requests("/{code}", redirect.status_code) == 1
    assert requests("/api/links", 201, "POST") == 1
    assert requests("/api/links/{code}", 404) == 1
    assert requests("unmatched", 404) == 1  # never the raw path: one series for them all
    routes = {labels["route"] for labels, _ in samples["encurta_http_requests_total"]}
    assert not any("nosuchcode" in route or "no/such" in route for route in routes)
    assert value(samples, "encurta_http_request_duration_seconds_count", route="/{code}") == 1
    assert (
        value(samples, "encurta_http_request_duration_seconds_bucket", route="/{code}", le="+Inf")
        == 1
    )

    assert value(samples, "encurta_shortener_clicks_recorded_total") == 1
    assert value(samples, "encurta_shortener_click_group_size_count") == 1
    assert value(samples, "encurta_shortener_click_group_size_sum") == 1
    assert value(samples, "encurta_shortener_click_commit_seconds_count") == 1

    lag = value(samples, "encurta_consumer_lag_seconds", module="analytics")
    assert lag is not None and lag >= 0
    for module in NAMES:
        assert value(samples, "encurta_database_up", module=module) == 1
        for state in ("in_use", "idle", "waiting"):
            assert value(samples, f"encurta_db_pool_{state}", module=module) is not None
    # The shortener publishes (clicks, links); analytics consumes them.
    assert value(samples, "encurta_outbox_backlog", module="shortener") is not None
    assert value(samples, "encurta_outbox_oldest_unsent_seconds", module="shortener") is not None
    assert value(samples, "encurta_parked_events", module="analytics") == 0


async def test_metrics_need_the_bearer_token(app_client: AppFactory) -> None:
    async with app_client(metrics=ON) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers=bearer("not-" + TOKEN))
        basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})

    for response in (missing, wrong, basic):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text


async def test_metrics_are_not_served_without_a_token_setting(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers=bearer(TOKEN))

    assert_problem(response, 404)


async def test_a_database_that_does_not_answer_is_down_and_the_scrape_still_answers(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    settings = settings.model_copy(update={"metrics": ON})
    async with serve(settings, {**database_urls, "auth": CLOSED}) as client:
        samples = await scrape(client)

    assert value(samples, "encurta_database_up", module="auth") == 0
    assert value(samples, "encurta_database_up", module="shortener") == 1
    # Unknown, not stale: the series of a database that did not answer are left out.
    assert value(samples, "encurta_outbox_backlog", module="auth") is None
    assert value(samples, "encurta_outbox_backlog", module="shortener") is not None


@pytest.mark.parametrize("given", ["", "Bearer", "Bearer ", "bearer x y"])
async def test_malformed_authorization_is_refused_not_failed(
    app_client: AppFactory, given: str
) -> None:
    async with app_client(metrics=ON) as client:
        response = await client.get("/metrics", headers={"Authorization": given})

    assert_problem(response, 401)


@pytest.mark.integration
def test_the_express_lane_counts_the_redirects_it_answers_below_asgi(
    database_urls: dict[str, str], tmp_path: Path
) -> None:
    """Under `encurta serve` the redirect is answered in the server's protocol, which no
    ASGI middleware sees: the protocol counts it itself."""
    urls = {f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in database_urls.items()}
    server = Server(tmp_path / "data", ENCURTA_METRICS__TOKEN=TOKEN, **urls)
    try:
        server.wait_ready()
        email = f"express-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=server.url) as api:
            assert api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
            token = api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            made = api.post(
                "/api/links",
                json={"url": "https://example.com/express"},
                headers=bearer(token.json()["access_token"]),
            )
            assert made.status_code == 201, made.text
            code = made.json()["code"]
            answers = [api.get(f"/{code}").status_code for _ in range(3)]
            assert all(300 <= status < 400 for status in answers), answers
            scraped = api.get("/metrics", headers=bearer(TOKEN))
    finally:
        server.interrupt()

    samples = parse(scraped.text)
    redirects = value(
        samples, "encurta_http_requests_total", route="/{code}", status=str(answers[0])
    )
    assert redirects == 3
    assert value(samples, "encurta_http_request_duration_seconds_count", route="/{code}") == 3
    assert value(samples, "encurta_http_requests_total", route="/api/links", method="POST") == 1


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_token_leaves_metrics_off(blank: str) -> None:
    """Else `Authorization: Bearer ` (nothing after it) would be let in."""
    assert MetricsSettings(token=SecretStr(blank)).token is None


def test_a_made_up_method_makes_no_series_of_its_own() -> None:
    meter = RequestMeter()
    for n in range(50):
        meter.observe(f"FOO{n}", "unmatched", 400, 0.001)
    meter.observe("GET", "unmatched", 404, 0.001)
    [requests, _] = list(meter.collect())
    methods = {sample.labels["method"] for sample in requests.samples}
    assert methods == {"GET", "other"}
