"""`/docs`: the API reference made on the server from the served OpenAPI document, so it
cannot leave an operation out; in the pages' layout and under their CSP."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.kernel.web.pages import PAGE_HEADERS
from app.main import create_app
from app.modules.shortener.codes import RESERVED
from tests.test_main import split_settings

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html"}


async def test_every_operation_of_the_document_is_on_the_page(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    page = await client.get("/docs", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = html.unescape(page.text)
    headings = set(
        re.findall(
            r'<h3 id="[^"]+"><span class="method[^"]*">(\w+)</span> '
            r'<code class="path">([^<]+)</code></h3>',
            text,
        )
    )
    expected = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert len(expected) > 20  # the whole API of this process, not a stub
    assert headings == expected
    for item in document["paths"].values():
        for operation in item.values():
            # Backticks in the prose become <code>.
            summary = operation["summary"].replace("`", "")
            assert summary in re.sub(r"</?code>", "", text)


async def test_the_contents_link_to_every_operation(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    anchors = set(re.findall(r'<h3 id="([^"]+)"', page))
    links = set(re.findall(r'<a href="#([^"]+)"><span class="method">', page))
    assert anchors and links == anchors
    assert '<a href="/openapi.json">' in page


async def test_fields_show_their_types_enums_and_what_is_required(
    client: httpx.AsyncClient,
) -> None:
    page = html.unescape((await client.get("/docs")).text)
    create_key = page[page.index('<code class="path">/api/keys</code>') :]
    create_key = create_key[create_key.index("Request body") :][:4000]
    # CreateKey.scopes: an array whose items are an enum.
    scopes = create_key[create_key.index("<code>scopes</code>") :]
    assert "required" in scopes[:300]
    for scope in ("links:read", "links:write", "stats:read", "admin"):
        assert f"<code>{scope}</code>" in scopes[:1000]
    # A query parameter with an enum and a default (the statistics' interval).
    stats = page[page.index('<code class="path">/api/stats/{code}</code>') :]
    interval = stats[stats.index("<code>interval</code>") :][:800]
    assert "in query" in interval and "Default: day" in interval
    assert "<code>hour</code>, <code>day</code>, <code>week</code>" in interval
    # A $ref'd array of objects is resolved one level down: a rule's `when` and `url`.
    create_link = page[
        page.index('<code class="path">/api/links</code></h3>\n    <p class="summary">Shorten') :
    ]
    rules = create_link[create_link.index("<code>redirect_rules</code>") :][:2000]
    assert "array of RedirectRule or null" in rules
    assert "<code>when</code>" in rules and "Checked like the link" in rules
    # Operations without credentials say so; the others name what they take.
    redirect = page[page.index('<code class="path">/{code}</code>') :][:600]
    assert "No auth" in redirect
    assert "Bearer token or API key" in create_link[:600]
    assert (
        '409</code></td>\n          <td>The custom code is taken <span class="muted">(problem+json)'
        in create_link
    )


async def test_the_page_has_the_pages_headers_and_no_inline_script_or_style(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs", headers=HTML)
    for name, value in PAGE_HEADERS.items():
        assert page.headers[name] == value
    assert "<script>" not in page.text and " style=" not in page.text
    assert "Authentication" in page.text and "/api/auth/login" in page.text
    assert "X-Api-Key" in page.text


async def test_docs_is_no_short_code_and_the_front_door_leaves_it_to_the_router(
    client: httpx.AsyncClient,
) -> None:
    assert "docs" in RESERVED
    # The front door answers one-segment paths; a 404 "link not found" page here would
    # mean it took /docs for a code.
    for accept in ("text/html", "*/*"):
        page = await client.get("/docs", headers={"Accept": accept})
        assert page.status_code == 200 and "API reference" in page.text
    head = await client.head("/docs")
    assert head.status_code in (200, 405)


@pytest.mark.parametrize("modules", [["shortener"], ["analytics"]])
async def test_a_process_of_a_split_deployment_describes_the_whole_api(
    settings: Settings,
    database_urls: dict[str, str],
    tmp_path: Path,
    client: httpx.AsyncClient,
    modules: list[str],
) -> None:
    """The proxy sends /openapi.json and /docs to the shortener: they must not describe
    its own routes only."""
    whole = (await client.get("/openapi.json")).json()
    app = create_app(split_settings(settings, tmp_path, modules), database_urls)
    transport = httpx.ASGITransport(app=app)  # not started: describing needs no broker
    async with httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as split:
        document = (await split.get("/openapi.json")).json()
        assert document["paths"].keys() == whole["paths"].keys()
        assert "/api/auth/login" in document["paths"] and "/api/stats/{code}" in document["paths"]
        page = (await split.get("/docs")).text
        assert '<code class="path">/api/auth/login</code>' in page
        assert '<code class="path">/api/stats/{code}</code>' in page
        # Still not served here: described is not routed.
        assert (await split.post("/api/auth/login", json={})).status_code == 404
