"""`/healthz` says the process answers; `/readyz` says each enabled module's database does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest

from app.config import Settings
from app.main import ConfigurationError, create_app
from app.registry import NAMES
from tests.support.problems import assert_problem

# Nothing listens on port 1: connecting is refused at once.
CLOSED = "postgresql+asyncpg://nobody:nothing@127.0.0.1:1/nothing"


@asynccontextmanager
async def serve(settings: Settings, urls: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, urls)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client,
    ):
        yield client


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_answers_even_when_a_database_does_not(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    async with serve(settings, {**database_urls, "auth": CLOSED}) as client:
        response = await client.get("/healthz")

    assert response.status_code == 200


async def test_readyz_lists_every_enabled_module(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "modules": {name: "ok" for name in NAMES},
    }


def test_a_partial_module_set_is_refused_on_the_in_process_bus(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    """In-process, a module's events reach only modules in the same process."""
    only_shortener = settings.model_copy(update={"modules": ["shortener"]})

    with pytest.raises(ConfigurationError, match="ENCURTA_MODULES leaves out auth, analytics"):
        create_app(only_shortener, database_urls)


async def test_readyz_is_a_503_naming_the_module_whose_database_does_not_answer(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    async with serve(settings, {**database_urls, "analytics": CLOSED}) as client:
        response = await client.get("/readyz")

    problem = assert_problem(response, 503)
    assert "analytics" in problem["detail"]
    assert "auth" not in problem["detail"] and "shortener" not in problem["detail"]
    assert problem["type"].endswith("/not-ready")
    assert response.headers["retry-after"] == "5"
    # The URL, and so its password, stays out of the answer.
    assert "127.0.0.1" not in response.text and "nothing" not in response.text


async def test_readyz_names_every_module_that_is_down(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    urls = {**database_urls, "auth": CLOSED, "analytics": CLOSED}
    async with serve(settings, urls) as client:
        response = await client.get("/readyz")

    problem = assert_problem(response, 503)
    assert "auth" in problem["detail"] and "analytics" in problem["detail"]
    assert "shortener" not in problem["detail"]


async def test_readyz_is_a_503_when_the_database_refuses_the_login(
    settings: Settings, database_urls: dict[str, str]
) -> None:
    # The server answers, but not to this password: not ready either.
    wrong_password = database_urls["analytics"].replace(
        "postgresql+asyncpg://encurta_analytics:", "postgresql+asyncpg://encurta_analytics:x"
    )
    assert wrong_password != database_urls["analytics"]
    async with serve(settings, {**database_urls, "analytics": wrong_password}) as client:
        response = await client.get("/readyz")

    problem = assert_problem(response, 503)
    assert "analytics" in problem["detail"]
