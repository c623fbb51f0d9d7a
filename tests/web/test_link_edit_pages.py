"""The links page's create form with every option, the edit page, and the list's sort, over
HTTP: what the forms do is checked where it lands, in the API's view of the link.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://encurta.test"}
HTML = {"Accept": "text/html"}
LATER = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=30)


async def sign_up(client: httpx.AsyncClient, email: str = "ana@example.com") -> None:
    response = await client.post(
        "/signup", data={"email": email, "password": PASSWORD}, headers=ORIGIN
    )
    assert response.status_code == 303, response.text


async def api_link(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/links/{code}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rules(link: dict[str, Any]) -> list[dict[str, Any]]:
    """The link's rules, each condition it does not have left out."""
    return [
        {"when": {k: v for k, v in r["when"].items() if v is not None}, "url": r["url"]}
        for r in link["redirect_rules"]
    ]


def local(moment: datetime) -> str:
    """As an <input type=datetime-local> sends it."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def test_every_option_of_the_create_form_lands_in_the_link(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    form = {
        "url": "https://example.com/all-options",
        "code": "all-options",
        "title": "Every option",
        "tags": "one, Two",
        "valid_from": local(LATER - timedelta(days=1)),
        "expires_at": local(LATER),
        "max_visits": "5",
        "password": "open sesame",
        "forward_query": "on",
        "rule-0-device": "ios",
        "rule-0-url": "https://apps.example.com/ios",
        "rule-1-url": "",  # an empty row is no rule
        "rule-2-language": "pt",
        "rule-2-country": "br",
        "rule-2-query": "utm_source=news&ref=x",
        "rule-2-url": "https://example.com.br/",
    }
    made = await client.post("/links", data=form, headers=ORIGIN)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/links?created=all-options"
    link = await api_link(client, "all-options")
    assert link["url"] == "https://example.com/all-options"
    assert link["title"] == "Every option" and link["tags"] == ["one", "Two"]
    assert datetime.fromisoformat(link["expires_at"]) == LATER  # read as UTC
    assert datetime.fromisoformat(link["valid_from"]) == LATER - timedelta(days=1)
    assert link["max_visits"] == 5 and link["forward_query"] is True
    assert link["has_password"] is True
    assert rules(link) == [
        {"when": {"device": "ios"}, "url": "https://apps.example.com/ios"},
        {
            "when": {
                "language": "pt",
                "country": "BR",
                "query": {"utm_source": "news", "ref": "x"},
            },
            "url": "https://example.com.br/",
        },
    ]
    # A plain link keeps the defaults.
    plain = await client.post("/links", data={"url": "https://example.com/plain"}, headers=ORIGIN)
    code = plain.headers["location"].rsplit("=", 1)[1]
    link = await api_link(client, code)
    assert link["has_password"] is False and link["redirect_rules"] == []
    assert link["forward_query"] is False and link["max_visits"] is None


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"max_visits": "0"}, "max_visits", "greater than or equal to 1"),
        ({"max_visits": "many"}, "max_visits", "A whole number"),
        ({"expires_at": "2001-01-01T00:00"}, "expires_at", "must be in the future"),
        ({"expires_at": "soon"}, "expires_at", "A date and time"),
        ({"password": "abc"}, "password", "at least 4 characters"),
        ({"rule-0-device": "fridge", "rule-0-url": "https://e.com/"}, "rule-0-device", "'ios'"),
        # Empty rows drop out: the second row, the only one used, is shown as the first.
        ({"rule-1-url": "https://e.com/"}, "rule-0", "at least one condition"),
        ({"rule-0-country": "PT", "rule-0-url": "ftp://e.com/"}, "rule-0-url", "http"),
        (
            {"valid_from": local(LATER), "expires_at": local(LATER - timedelta(hours=1))},
            "valid_from",
            "before expires_at",
        ),
    ],
)
async def test_a_wrong_option_is_shown_at_its_field_and_nothing_is_stored(
    client: httpx.AsyncClient, form: dict[str, str], field: str, message: str
) -> None:
    await sign_up(client)
    sent = {"url": "https://example.com/wrong", "title": "Kept title", **form}
    answer = await client.post("/links", data=sent, headers=ORIGIN)
    assert answer.status_code == 422, answer.text
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', answer.text)
    assert error is not None, answer.text
    assert message in html.unescape(error.group(1))
    if field != "rule-0":  # a field's own error, not its row's
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text), answer.text
    assert 'value="Kept title"' in answer.text  # what was typed is kept
    assert "<details open>" in answer.text
    assert (await client.get("/api/links")).json()["items"] == []


async def test_editing_a_link_changes_it_through_the_api(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    made = await client.post(
        "/api/links",
        json={
            "url": "https://example.com/before",
            "code": "editme",
            "title": "Before",
            "tags": ["a", "b"],
            "max_visits": 3,
            "password": "first secret",
            "redirect_rules": [{"when": {"device": "android"}, "url": "https://e.com/android"}],
        },
        headers=ORIGIN,
    )
    assert made.status_code == 201, made.text
    shown = await client.get("/links/editme/edit", headers=HTML)
    assert shown.status_code == 200
    for value in ("https://example.com/before", "Before", "a, b", "3", "https://e.com/android"):
        assert f'value="{value}"' in shown.text
    assert '<option value="android" selected>' in shown.text
    assert "Remove the password" in shown.text and "argon2" not in shown.text
    assert 'id="rule-3-url"' in shown.text  # the rule and 3 empty rows

    changed = await client.post(
        "/links/editme/edit",
        data={
            "url": "https://example.com/after",
            "title": "After",
            "tags": "a, c",
            "expires_at": local(LATER),
            "max_visits": "",
            "forward_query": "on",
            "rule-0-device": "",
            "rule-0-country": "pt",
            "rule-0-url": "https://e.pt/",
        },
        headers=ORIGIN,
    )
    assert changed.status_code == 303, changed.text
    assert changed.headers["location"] == "/links?updated=editme"
    link = await api_link(client, "editme")
    assert link["url"] == "https://example.com/after" and link["title"] == "After"
    assert link["tags"] == ["a", "c"] and link["max_visits"] is None
    assert datetime.fromisoformat(link["expires_at"]) == LATER
    assert link["forward_query"] is True
    assert rules(link) == [{"when": {"country": "PT"}, "url": "https://e.pt/"}]
    assert link["has_password"] is True  # a blank password keeps it
    listed = await client.get("/links?updated=editme", headers=HTML)
    assert "Saved the changes to encurta.test/editme" in listed.text
    assert 'aria-label="Edit encurta.test/editme">Edit</a>' in listed.text

    # The password: a new one replaces it (the visitor's form takes it), then removed.
    new = await client.post(
        "/links/editme/edit",
        data={"url": "https://example.com/after", "password": "second secret"},
        headers=ORIGIN,
    )
    assert new.status_code == 303
    unlocked = await client.post("/editme", data={"password": "second secret"})
    assert (
        unlocked.status_code == 303 and unlocked.headers["location"] == "https://example.com/after"
    )
    removed = await client.post(
        "/links/editme/edit",
        data={"url": "https://example.com/after", "remove_password": "on"},
        headers=ORIGIN,
    )
    assert removed.status_code == 303
    link = await api_link(client, "editme")
    assert link["has_password"] is False
    # A form sends every field: those it left blank are cleared.
    assert link["title"] is None and link["tags"] == [] and link["redirect_rules"] == []


async def test_a_wrong_edit_is_shown_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    made = await client.post(
        "/api/links", json={"url": "https://example.com/x", "code": "steady"}, headers=ORIGIN
    )
    assert made.status_code == 201
    wrong = await client.post(
        "/links/steady/edit",
        data={
            "url": "javascript:alert(1)",
            "title": "Typed",
            "rule-0-language": "not a language!",
            "rule-0-url": "https://e.com/",
        },
        headers=ORIGIN,
    )
    assert wrong.status_code == 422
    assert 'id="rule-0-language-error"' in wrong.text
    assert 'value="Typed"' in wrong.text and 'value="not a language!"' in wrong.text
    assert "Nothing was saved" in wrong.text
    target = await client.post(
        "/links/steady/edit", data={"url": "javascript:alert(1)"}, headers=ORIGIN
    )
    assert target.status_code == 422 and 'id="url-error"' in target.text
    link = await api_link(client, "steady")
    assert link["url"] == "https://example.com/x" and link["title"] is None


async def test_another_users_link_cannot_be_edited(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    made = await client.post(
        "/api/links", json={"url": "https://example.com/mine", "code": "mine"}, headers=ORIGIN
    )
    assert made.status_code == 201
    # Without an Origin (another site's form), refused before anything is read.
    forged = await client.post(
        "/links/mine/edit", data={"url": "https://evil.example/"}, headers=HTML
    )
    assert forged.status_code == 403
    assert (await client.get("/links/nosuch/edit", headers=HTML)).status_code == 404
    assert (await client.get("/links/bad%20code/edit", headers=HTML)).status_code == 404
    client.cookies.clear()
    await sign_up(client, "bea@example.com")
    other = await client.get("/links/mine/edit", headers=HTML)
    assert other.status_code == 404 and other.headers["content-type"].startswith("text/html")
    taken = await client.post(
        "/links/mine/edit", data={"url": "https://evil.example/"}, headers=ORIGIN
    )
    assert taken.status_code == 404
    client.cookies.clear()
    signed_in = await client.post(
        "/login", data={"email": "ana@example.com", "password": PASSWORD}, headers=ORIGIN
    )
    assert signed_in.status_code == 303
    assert (await api_link(client, "mine"))["url"] == "https://example.com/mine"


async def test_the_list_is_sorted_and_the_sort_kept(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for n in range(22):
        made = await client.post(
            "/api/links",
            json={"url": f"https://example.com/{n}", "code": f"link-{n:02}", "tags": ["t"]},
            headers=ORIGIN,
        )
        assert made.status_code == 201
    for _ in range(2):
        assert (await client.get("/link-05")).is_redirect
    for _ in range(100):  # the clicks are counted in batches
        if (await api_link(client, "link-05"))["click_count"] == 2:
            break
        await asyncio.sleep(0.05)

    def codes(page: httpx.Response) -> list[str]:
        return re.findall(r'<span class="code">([^<]+)</span>', page.text)

    newest = await client.get("/links", headers=HTML)
    assert codes(newest)[0] == "link-21"
    assert '<option value="-created_at" selected>Newest first</option>' in newest.text
    oldest = await client.get("/links?sort=created_at", headers=HTML)
    assert codes(oldest)[:2] == ["link-00", "link-01"]
    assert "page=2&amp;q=&amp;tag=&amp;sort=created_at" in oldest.text  # paging keeps it
    assert "/links?tag=t&amp;sort=created_at" in oldest.text  # so do the tags
    clicked = await client.get("/links?sort=-click_count&tag=t", headers={"HX-Request": "true"})
    assert codes(clicked)[0] == "link-05"
    assert clicked.text.lstrip().startswith('<div id="link-list"')  # htmx: the list alone
    odd = await client.get("/links?sort=title;drop", headers=HTML)
    assert odd.status_code == 200 and codes(odd)[0] == "link-21"
