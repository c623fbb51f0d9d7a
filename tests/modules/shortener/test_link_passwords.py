"""Password links: a form instead of the redirect until the right password is posted; one
click for the right password, none for wrong ones; wrong guesses throttled."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.modules.shortener.cache import CachedLink
from app.modules.shortener.protection import GuessThrottle, Throttled, form_page, wants_json
from tests.conftest import FAST_ARGON2, AppFactory, relay_of
from tests.modules.shortener.helpers import (
    CHROME,
    CLICKED,
    GOOGLEBOT,
    ShortenerDb,
    click_count,
    stop_background_relays,
)
from tests.modules.shortener.test_express import answered, head_of
from tests.support.accounts import new_account, shorten
from tests.support.problems import assert_problem

SECRET = "open sesame"
TARGET = "https://example.com/behind"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Cheap hashes; clicks kept in the outbox once sent (see test_redirect)."""
    shortener = settings.shortener.model_copy(update={"argon2": FAST_ARGON2})
    bus = settings.bus.model_copy(update={"handoff_limit": 0})
    return settings.model_copy(update={"shortener": shortener, "bus": bus})


async def unlock(
    client: httpx.AsyncClient, code: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/{code}",
        content=httpx.QueryParams({"password": password}).__str__(),
        headers={"Content-Type": FORM, "User-Agent": CHROME, **headers},
    )


class _Form(HTMLParser):
    """What a browser would make of the page: its labels, inputs, and any script."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.label_text: dict[str | None, str] = {}
        self._label: str | None = None
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "label":
            self._in_label, self._label = True, dict(attrs).get("for")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = False

    def handle_data(self, data: str) -> None:
        if self._in_label:
            self.label_text[self._label] = self.label_text.get(self._label, "") + data


def assert_form(response: httpx.Response, status: int) -> _Form:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.text.startswith("<!DOCTYPE html>")
    form = _Form()
    form.feed(response.text)
    names = [tag for tag, _ in form.tags]
    assert "script" not in names and "style" not in names
    assert not any(name.startswith("on") for _, attrs in form.tags for name in attrs)
    [(_, form_attrs)] = [item for item in form.tags if item[0] == "form"]
    assert form_attrs["method"] == "post"
    [(_, field)] = [item for item in form.tags if item[0] == "input"]
    assert (field["name"], field["type"]) == ("password", "password")
    assert form.label_text[field["id"]] == "Password"
    return form


async def test_a_password_is_write_only_and_stored_as_an_argon2id_hash(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    link = await shorten(client, ana, TARGET, code="locked", password=SECRET)

    assert link["has_password"] is True
    assert "password" not in link and SECRET not in str(link)
    db = ShortenerDb(database_urls)
    stored = await db.value("SELECT password_hash FROM urls WHERE code = 'locked'")
    assert stored.startswith("$argon2id$") and SECRET not in stored
    for row in await db.outbox():  # no event carries the hash, or the password
        assert "$argon2" not in row["row_json"] and SECRET not in row["row_json"]
    [created] = await db.outbox("shortener.link_created.v1")
    assert created["payload"]["has_password"] is True
    shown = await client.get("/api/links/locked", headers=ana.headers)
    assert shown.json() == link


async def test_the_form_is_served_to_everyone_and_nobody_is_redirected_without_it(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="locked", password=SECRET)

    for agent in (CHROME, GOOGLEBOT, ""):
        page = await client.get("/locked", headers={"User-Agent": agent})
        assert_form(page, 200)
        assert "location" not in page.headers
    head = await client.head("/locked", headers={"User-Agent": CHROME})
    assert (head.status_code, head.content) == (200, b"")
    as_json = await client.get("/locked", headers={"Accept": "application/json"})
    assert "password" in assert_problem(as_json, 401)["detail"]
    head_json = await client.head("/locked", headers={"Accept": "application/json"})
    assert head_json.status_code == 401
    assert await click_count(client, ana, "locked") == 0


async def test_the_right_password_redirects_and_counts_one_click_and_wrong_ones_none(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="locked", password=SECRET)

    wrong = await unlock(client, "locked", "open sesame!")
    assert_form(wrong, 401)
    assert "Wrong password" in wrong.text
    empty = await unlock(client, "locked", "")
    assert_form(empty, 401)
    as_json = await unlock(client, "locked", "nope", Accept="application/json")
    assert_problem(as_json, 401)
    assert await click_count(client, ana, "locked") == 0

    right = await unlock(client, "locked", SECRET)

    assert right.status_code == 303  # the browser GETs the target: the password is not re-sent
    assert right.headers["location"] == TARGET
    assert await click_count(client, ana, "locked") == 1
    [click] = await ShortenerDb(database_urls).outbox(CLICKED)
    assert click["payload"]["code"] == "locked"
    assert click["payload"]["user_agent"] == CHROME
    assert_form(await client.get("/locked"), 200)  # the next visit is asked again


async def test_wrong_guesses_are_throttled_per_client_and_link(
    app_client: AppFactory, settings: Settings
) -> None:
    shortener = settings.shortener.model_copy(update={"password_guesses": 3})
    async with app_client(shortener=shortener) as client:
        ana = await new_account(client)
        await shorten(client, ana, TARGET, code="locked", password=SECRET)
        await shorten(client, ana, TARGET, code="other", password=SECRET)

        answers = [(await unlock(client, "locked", f"guess {n}")).status_code for n in range(3)]
        refused = await unlock(client, "locked", SECRET)  # even the right one, now
        refused_json = await unlock(client, "locked", "x", Accept="application/json")

        assert answers == [401, 401, 401]
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 900
        assert "Too many wrong passwords" in refused.text
        assert_problem(refused_json, 429)
        assert "retry-after" in refused_json.headers
        assert (await unlock(client, "other", SECRET)).status_code == 303  # another link
        assert await click_count(client, ana, "locked") == 0


async def test_a_right_password_forgets_the_wrong_guesses_before_it(
    app_client: AppFactory, settings: Settings
) -> None:
    shortener = settings.shortener.model_copy(update={"password_guesses": 2})
    async with app_client(shortener=shortener) as client:
        ana = await new_account(client)
        await shorten(client, ana, TARGET, code="locked", password=SECRET)
        assert (await unlock(client, "locked", "typo")).status_code == 401
        assert (await unlock(client, "locked", SECRET)).status_code == 303
        assert (await unlock(client, "locked", "typo")).status_code == 401
        assert (await unlock(client, "locked", SECRET)).status_code == 303


@pytest.mark.parametrize("password", ["abc", "", "x" * 257])
async def test_a_password_too_short_or_too_long_is_a_422_naming_password(
    client: httpx.AsyncClient, password: str
) -> None:
    ana = await new_account(client)
    created = await client.post(
        "/api/links", json={"url": TARGET, "password": password}, headers=ana.headers
    )
    assert_problem(created, 422, fields=["password"])
    await shorten(client, ana, TARGET, code="open")
    changed = await client.patch(
        "/api/links/open", json={"password": password}, headers=ana.headers
    )
    assert_problem(changed, 422, fields=["password"])


async def test_patch_sets_changes_and_null_clears_the_password(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="door")
    assert (await client.get("/door")).status_code == 302

    async def patch(**fields: Any) -> dict[str, Any]:
        response = await client.patch("/api/links/door", json=fields, headers=ana.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert (await patch(password="first"))["has_password"] is True
    assert_form(await client.get("/door"), 200)
    assert (await patch(title="kept"))["has_password"] is True  # absent: unchanged
    await patch(password="second")
    assert (await unlock(client, "door", "first")).status_code == 401
    assert (await unlock(client, "door", "second")).status_code == 303
    assert (await patch(password=None))["has_password"] is False
    assert (await client.get("/door")).status_code == 302
    assert (await unlock(client, "door", "second")).status_code == 405


async def test_post_to_an_unknown_code_is_404_and_a_bad_body_is_refused(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="locked", password=SECRET)
    assert_problem(await unlock(client, "nothing-here", SECRET), 404)
    as_json = await client.post("/locked", json={"password": SECRET})
    assert_problem(as_json, 415)
    huge = await client.post(
        "/locked", content="password=" + "x" * 5000, headers={"Content-Type": FORM}
    )
    assert_problem(huge, 413)


async def test_the_express_lane_never_redirects_a_password_link(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="locked", password=SECRET)
    assert_form(await client.get("/locked"), 200)  # cached now

    response = await answered(client, "/locked")

    status, headers = head_of(response)
    assert status == "HTTP/1.1 200 OK" and "location" not in headers
    assert b'<label for="password">Password</label>' in response.body
    head = await answered(client, "/locked", "HEAD")
    assert head_of(head)[0] == "HTTP/1.1 200 OK"
    assert await click_count(client, ana, "locked") == 0


def test_a_password_or_rules_keep_a_link_off_the_express_fast_path() -> None:
    import uuid

    from app.modules.shortener.rules import Rule

    def link(**fields: Any) -> CachedLink:
        return CachedLink(uuid.uuid4(), "c", TARGET, None, False, **fields)

    assert not link().guarded
    assert link(has_password=True).guarded
    assert link(rules=(Rule(url=TARGET, device="ios"),)).guarded


async def test_a_password_set_on_one_replica_reaches_the_other_by_its_event(
    app_client: AppFactory,
) -> None:
    async with app_client() as one, app_client() as two:
        ana = await new_account(one)
        await stop_background_relays(one)
        await stop_background_relays(two)
        await shorten(one, ana, TARGET, code="shared")
        assert (await two.get("/shared")).status_code == 302  # two has it cached
        changed = await one.patch(
            "/api/links/shared", json={"password": SECRET}, headers=ana.headers
        )
        assert changed.status_code == 200

        await relay_of(two, "shortener").drain()  # the link_updated event, as two hears it

        assert_form(await two.get("/shared"), 200)
        assert (await unlock(two, "shared", SECRET)).status_code == 303
        cleared = await one.patch("/api/links/shared", json={"password": None}, headers=ana.headers)
        assert cleared.json()["has_password"] is False
        await relay_of(two, "shortener").drain()
        assert (await two.get("/shared")).status_code == 302


async def test_a_password_link_with_a_visit_limit_uses_a_visit_only_when_unlocked(
    client: httpx.AsyncClient,
) -> None:
    ana = await new_account(client)
    await shorten(client, ana, TARGET, code="once", password=SECRET, max_visits=1)
    assert_form(await client.get("/once"), 200)  # asking uses no visit
    assert (await unlock(client, "once", "wrong")).status_code == 401
    assert (await unlock(client, "once", SECRET)).status_code == 303
    assert_problem(await unlock(client, "once", SECRET), 410)
    shown = (await client.get("/api/links/once", headers=ana.headers)).json()
    assert (shown["visits"], shown["click_count"]) == (1, 1)


def test_the_page_escapes_what_it_shows() -> None:
    page = form_page('<script>"x"</script>', 401, "a & <b>")
    assert b"<script>" not in page.body
    assert b"&lt;script&gt;&#34;x&#34;&lt;/script&gt;" in page.body  # Jinja2's autoescape
    assert b"a &amp; &lt;b&gt;" in page.body


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        ("application/json", True),
        ("application/problem+json", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("text/html, application/json", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_only_a_client_that_asks_for_json_and_not_html_gets_json(
    accept: str | None, json: bool
) -> None:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    assert wants_json({"headers": headers}) is json


def test_wrong_guesses_age_out_of_the_window() -> None:
    now = [1000.0]
    throttle = GuessThrottle(2, 60, clock=lambda: now[0])
    throttle.guess("203.0.113.9", "abc")
    now[0] += 30
    throttle.guess("203.0.113.9", "abc")
    with pytest.raises(Throttled) as refused:
        throttle.guess("203.0.113.9", "abc")
    assert refused.value.retry_after == 30  # when the first guess leaves the window
    throttle.guess("203.0.113.10", "abc")  # another client
    throttle.guess("203.0.113.9", "xyz")  # another link
    now[0] += 30
    throttle.guess("203.0.113.9", "abc").right()  # the first aged out; a right one forgets
    throttle.guess("203.0.113.9", "abc")
    throttle.guess("203.0.113.9", "abc")


async def test_a_disabled_password_link_answers_410_to_its_password_too(
    client: httpx.AsyncClient,
) -> None:
    admin = await new_account(client, "admin@example.com")  # the first account: the admin
    user = await new_account(client, "user@example.com")
    await shorten(client, user, TARGET, code="locked", password=SECRET)
    disabled = await client.patch(
        "/api/admin/links/locked",
        json={"disabled": True, "reason": "phishing"},
        headers=admin.headers,
    )
    assert disabled.status_code == 200, disabled.text

    assert "phishing" in assert_problem(await client.get("/locked"), 410)["detail"]
    assert "phishing" in assert_problem(await unlock(client, "locked", SECRET), 410)["detail"]
    assert await click_count(client, user, "locked") == 0
