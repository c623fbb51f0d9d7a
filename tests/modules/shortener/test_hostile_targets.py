"""Acceptance: 30+ hostile target URLs are each refused with 422, through the HTTP API,
and nothing of a refused request is stored. (targets.py's rules in detail are unit-tested in
test_targets.py; this proves the API applies them, with this instance's own host.)

The parametrised cases share one app (module-scoped, on a module-scoped event loop): each
case is one request, and a fresh app per case would cost more than the whole check.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from app.config import Settings
from app.main import create_app
from app.modules.auth.settings import AuthSettings
from tests.conftest import FAST_ARGON2, AppFactory, truncate_all
from tests.modules.shortener.helpers import ShortenerDb
from tests.support.accounts import Account, new_account, shorten
from tests.support.problems import assert_problem

SCHEME = "Only http and https links can be shortened."
CREDENTIALS = "Links must not contain a user name or password."
PRIVATE = "The link points at a private or local address."
OWN = "Links to this encurta instance cannot be shortened."
NO_HOST = "The link must include a host name."
TOO_LONG = "The link is longer than 2048 characters."

HOSTILE = [
    # Script, data and other non-web schemes, and what browsers forgive around them.
    ("javascript:alert(1)", SCHEME),
    ("JaVaScRiPt:alert(document.cookie)", SCHEME),
    (" javascript:alert(1)", SCHEME),
    ("java\tscript:alert(1)", SCHEME),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", SCHEME),
    ("file:///etc/passwd", SCHEME),
    ("vbscript:msgbox(1)", SCHEME),
    ("ftp://example.com/", SCHEME),
    ("//evil.example/", SCHEME),
    ("https:/\\evil.example", NO_HOST),
    # Credentials: phishing with a trusted-looking name before the `@`.
    ("https://user:pass@example.com/", CREDENTIALS),
    ("https://paypal.com@evil.example/", CREDENTIALS),
    ("https://user@example.com/", CREDENTIALS),
    ("http://evil.example\\@good.example/", CREDENTIALS),
    # Loopback in every IPv4 notation a browser accepts.
    ("http://127.0.0.1/", PRIVATE),
    ("http://127.1/", PRIVATE),
    ("http://2130706433/", PRIVATE),
    ("http://017700000001/", PRIVATE),
    ("http://0x7f000001/", PRIVATE),
    ("http://0x7f.0.0.1/", PRIVATE),
    ("http://0177.0.0.1/", PRIVATE),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", PRIVATE),  # fullwidth digits
    ("http://0.0.0.0/", PRIVATE),
    ("http://0/", PRIVATE),
    # Private, shared and link-local networks; cloud metadata services.
    ("http://10.0.0.1/", PRIVATE),
    ("http://172.16.0.1/", PRIVATE),
    ("http://192.168.1.1/", PRIVATE),
    ("http://100.64.0.1/", PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
    ("http://2852039166/", PRIVATE),
    ("http://0xA9FEA9FE/", PRIVATE),
    ("http://metadata.google.internal/computeMetadata/v1/", PRIVATE),
    ("http://[fd00:ec2::254]/", PRIVATE),
    # IPv6 loopback and link-local, and IPv6 forms that carry a private IPv4 address.
    ("http://[::1]/", PRIVATE),
    ("http://[fe80::1]/", PRIVATE),
    ("http://[::ffff:127.0.0.1]/", PRIVATE),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", PRIVATE),
    ("http://[::ffff:a9fe:a9fe]/", PRIVATE),
    ("https://[::ffff:10.0.0.1]:443/", PRIVATE),
    ("http://[64:ff9b::127.0.0.1]/", PRIVATE),
    # Names that only mean something on the visitor's own network.
    ("http://localhost/", PRIVATE),
    ("http://LOCALHOST:8080/", PRIVATE),
    ("http://localhost./", PRIVATE),
    ("http://api.localhost/", PRIVATE),
    ("http://intranet/", PRIVATE),
    # This instance itself (the test client's host): a redirect loop.
    ("http://encurta.test/x", OWN),
    ("HTTPS://Encurta.Test./x", OWN),
    ("https://example.com/" + "a" * 2100, TOO_LONG),
]


def case_id(url: str) -> str:
    return url if len(url) < 60 else url[:40] + "..."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(
    database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    """One app for all the cases, built as `app_client` builds one."""
    await truncate_all(database_urls)
    data_dir = tmp_path_factory.mktemp("hostile")
    app = create_app(
        Settings(data_dir=data_dir, auth=AuthSettings(argon2=FAST_ARGON2)), database_urls
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client,
    ):
        yield client, await new_account(client, f"{uuid.uuid4().hex}@example.com")


def test_there_are_more_than_thirty_hostile_cases() -> None:
    assert len(HOSTILE) >= 35
    assert len({url for url, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("url", "message"), HOSTILE, ids=[case_id(url) for url, _ in HOSTILE])
async def test_a_hostile_target_is_refused_with_a_422_naming_url(
    shared: tuple[httpx.AsyncClient, Account],
    database_urls: dict[str, str],
    url: str,
    message: str,
) -> None:
    client, account = shared

    response = await client.post("/api/links", json={"url": url}, headers=account.headers)

    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "url", "message": message}]
    db = ShortenerDb(database_urls)
    assert await db.url_count() == 0
    assert await db.outbox() == []


async def test_links_to_the_configured_public_host_are_refused_too(
    app_client: AppFactory, settings: Settings, database_urls: dict[str, str]
) -> None:
    public = settings.shortener.model_copy(update={"public_url": "https://sho.rt"})
    async with app_client(shortener=public) as client:
        account = await new_account(client)
        responses = [
            await client.post("/api/links", json={"url": url}, headers=account.headers)
            for url in ("https://sho.rt/abc", "http://SHO.RT:443/abc", "https://sho.rt./")
        ]
        accepted = await shorten(client, account, "https://example.com/")

    for response in responses:
        assert assert_problem(response, 422)["errors"] == [{"field": "url", "message": OWN}]
    assert accepted["short_url"].startswith("https://sho.rt/")
    assert await ShortenerDb(database_urls).url_count() == 1


@pytest.mark.asyncio(loop_scope="module")  # the loop of `shared`, whose app it calls
async def test_a_forged_host_header_does_not_hide_the_address_the_request_reached(
    shared: tuple[httpx.AsyncClient, Account], database_urls: dict[str, str]
) -> None:
    client, account = shared
    headers = {**account.headers, "Host": "evil.example"}
    db = ShortenerDb(database_urls)
    before = await db.url_count()

    response = await client.post(
        "/api/links", json={"url": "http://encurta.test/x"}, headers=headers
    )

    assert assert_problem(response, 422)["errors"] == [{"field": "url", "message": OWN}]
    assert await db.url_count() == before


async def test_private_targets_are_a_setting_but_scripts_and_loops_never_are(
    app_client: AppFactory, settings: Settings
) -> None:
    private = settings.shortener.model_copy(update={"allow_private_targets": True})
    async with app_client(shortener=private) as client:
        account = await new_account(client)
        intranet = await shorten(client, account, "http://10.0.0.1/wiki")
        refused = [
            await client.post("/api/links", json={"url": url}, headers=account.headers)
            for url in ("javascript:alert(1)", "https://user@10.0.0.1/", "http://encurta.test/x")
        ]

    assert intranet["url"] == "http://10.0.0.1/wiki"
    assert [assert_problem(r, 422)["errors"][0]["message"] for r in refused] == [
        SCHEME,
        CREDENTIALS,
        OWN,
    ]
