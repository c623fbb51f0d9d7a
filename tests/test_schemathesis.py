"""schemathesis against the real app and its embedded PostgreSQL.

Every operation of the served document, anonymous and with a registered user's Bearer
token, with data the document calls valid and data it calls invalid, must answer no 5xx
and nothing the document does not say (status, content type, headers, body schema), and
must reject what the document calls invalid.

schemathesis generates the cases (its Python API, `APIOperation.as_strategy`, under a
derandomized Hypothesis run: the same cases on every run, so CI is repeatable), and checks
each response; the requests go through the suite's own app fixture, on the test's loop.
The run is bounded: MAX_EXAMPLES cases per operation and mode (about 1,000 in all).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import AppFactory
from tests.support.accounts import bearer, new_account, shorten

pytestmark = pytest.mark.integration

# Per operation and mode. A deeper run: FUZZ_MAX_EXAMPLES=500 pytest tests/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
BASE_URL = "http://encurta.test"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _cases(
    operation: schemathesis.APIOperation, mode: GenerationMode, **pinned: Any
) -> list[schemathesis.Case]:
    """Up to MAX_EXAMPLES distinct cases for `operation`, the same on every run; `pinned`
    fixes parts of the request (a path parameter, the body). Nothing is sent yet."""
    cases: list[schemathesis.Case] = []

    @given(case=operation.as_strategy(generation_mode=mode, **pinned))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        # Nothing left to make invalid: no parameters or body, or all of them pinned.
        assert mode is GenerationMode.NEGATIVE, operation.label
        assert pinned or not _has_inputs(operation), operation.label
    return cases


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


async def _send(
    client: httpx.AsyncClient, case: schemathesis.Case, headers: dict[str, str]
) -> httpx.Response:
    # schemathesis serializes a case as `requests` arguments; `requests` prepares the exact
    # bytes (URL quoting, query, body), which httpx sends unchanged.
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return await client.request(
        str(prepared.method), str(prepared.url), headers=dict(prepared.headers), content=body
    )


class Run:
    """Sends cases to the app and checks each response; collects every failure."""

    def __init__(self, client: httpx.AsyncClient, document: dict[str, Any], token: str | None):
        self.client = client
        self.headers = bearer(token) if token else {}
        # With a token, the token is the caller's own: schemathesis makes up no other.
        config = schemathesis.Config.from_dict(
            {"generation": {"with-security-parameters": token is None}}
        )
        self.schema = schemathesis.openapi.from_dict(document, config=config)
        # `/{code}` with code "healthz" is the health route, not a link: a made-up code that
        # spells another route's path is answered by that route, by design.
        self.own_paths = {path for path in document["paths"] if "{" not in path}
        self.own_paths.add("/openapi.json")
        self.failures: list[str] = []
        self.sent = 0
        self.statuses: dict[str, Counter[int]] = {}

    def operations(self) -> list[schemathesis.APIOperation]:
        return [result.ok() for result in self.schema.get_all_operations()]

    async def fuzz(self, operation: schemathesis.APIOperation, **pinned: Any) -> None:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in _cases(operation, mode, **pinned):
                response = await _send(self.client, case, self.headers)
                path = response.request.url.path
                if path in self.own_paths and path != operation.path:
                    continue
                self.sent += 1
                self.statuses.setdefault(operation.label, Counter())[response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS, headers=self.headers)
                except (AssertionError, BaseExceptionGroup) as exc:  # all reported together
                    self.failures.append(
                        f"{operation.label} ({mode.value}) -> {response.status_code}\n{exc}"
                    )

    def assert_clean(self) -> None:
        report = "\n".join(f"{label}: {dict(counts)}" for label, counts in self.statuses.items())
        print(f"\n{self.sent} cases:\n{report}")
        assert not self.failures, (
            f"{len(self.failures)} of {self.sent} cases failed:\n\n"
            + "\n\n".join(self.failures[:10])
        )


async def test_every_operation_anonymously(app_client: AppFactory) -> None:
    async with app_client() as client:
        run = Run(client, (await client.get("/openapi.json")).json(), token=None)
        operations = run.operations()
        for operation in operations:
            await run.fuzz(operation)
    assert len(operations) >= 15
    run.assert_clean()


async def test_every_operation_with_a_token(app_client: AppFactory) -> None:
    async with app_client() as client:
        fuzzer = await new_account(client, "fuzz@example.com")
        for code in ("fuzz-one", "fuzz-two"):
            await shorten(client, fuzzer, code=code)
        await _until_analytics_knows(client, fuzzer.headers, "fuzz-one")

        run = Run(client, (await client.get("/openapi.json")).json(), token=fuzzer.token)
        for operation in run.operations():
            await run.fuzz(operation)
        # Random codes are nobody's links: the same operations again on links that exist,
        # the rest of the request still generated, then the deleted link's 410.
        schema = run.schema
        await run.fuzz(schema["/api/links"]["POST"], body={"url": "https://example.com/x"})
        for path in ("/{code}", "/api/links/{code}", "/api/stats/{code}"):
            await run.fuzz(schema[path]["GET"], path_parameters={"code": "fuzz-one"})
        await run.fuzz(schema["/api/links/{code}"]["DELETE"], path_parameters={"code": "fuzz-two"})
        await run.fuzz(schema["/{code}"]["GET"], path_parameters={"code": "fuzz-two"})
    statuses = run.statuses
    assert statuses["GET /api/stats/{code}"][200] > 0
    assert statuses["GET /api/links/{code}"][200] > 0
    assert statuses["GET /{code}"][302] > 0 and statuses["GET /{code}"][410] > 0
    assert statuses["POST /api/links"][201] > 0
    run.assert_clean()


async def _until_analytics_knows(
    client: httpx.AsyncClient, auth: dict[str, str], code: str
) -> None:
    """The link reaches analytics as an event, soon after it is created."""
    deadline = time.monotonic() + 30
    while (await client.get(f"/api/stats/{code}", headers=auth)).status_code != 200:
        assert time.monotonic() < deadline, "analytics never learned of the link"
        await asyncio.sleep(0.05)
