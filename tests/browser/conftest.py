"""A real `encurta serve` (embedded PostgreSQL) and the Debian Chromium, driven by Playwright.

Playwright cannot download its own browsers here; it drives the system's (`apt-get install
chromium`, which `make test` does when it can). A missing browser fails the tests with what
to install: a skipped browser test would hide a missing feature.

Every page the tests open runs in a context that refuses any request leaving the server's
origin and records it, and records every console error (a CSP refusal shows there): the
`browser_page` fixture fails the test on either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import traversable_tmp
from tests.support.accounts import PASSWORD
from tests.test_serve import ENCURTA, Server, encurta_env

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "vendor" / "axe.min.js"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def live_server() -> Iterator[Server]:
    root = traversable_tmp("encurta-test-browser-")
    # Every browser test signs up people from one address: the per-address registration
    # limit (10 an hour by default) is for the internet, not for this suite.
    server = Server(root / "data", ENCURTA_AUTH__THROTTLE__MAX_REGISTRATIONS_PER_IP="1000")
    try:
        server.wait_ready(timeout=60)
        yield server
    finally:
        server.interrupt()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def admin(live_server: Server) -> str:
    """The email of an admin of the live server (password PASSWORD), made as an operator
    makes one: `encurta users create --admin` beside the running instance."""
    email = "admin@example.com"
    made = subprocess.run(
        [str(ENCURTA), "users", "create", email, "--admin", "--password-stdin"],
        input=PASSWORD,
        env=encurta_env(live_server.data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return email


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per test module: while Playwright's sync API is up it holds an event loop running in
    this thread, and a later test's `asyncio.run` (tests/conftest.py) would refuse to run."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM}: `apt-get install -y chromium` "
            "(Debian), or set CHROMIUM to its path. `make test` installs it as root."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@dataclass
class Watch:
    """What a page did that it must not: leave the origin, log an error."""

    origin: str
    elsewhere: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_context(browser: Any, server: Server, **options: Any) -> tuple[Any, Watch]:
    watch = Watch(server.url)
    context = browser.new_context(base_url=server.url, **options)

    def ours(url: str) -> bool:
        return url.startswith((watch.origin + "/", "data:"))

    def route(route: Any) -> None:
        if ours(route.request.url):
            route.continue_()
        else:
            route.abort()

    def seen(request: Any) -> None:
        # Every request, routed or not: Playwright does not route the target of a redirect,
        # so a redirect to elsewhere is caught here (though not stopped: `stop_redirects`).
        if not ours(request.url):
            watch.elsewhere.append(request.url)

    context.route("**/*", route)
    context.on("request", seen)
    context.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    return context, watch


@pytest.fixture
def browser_page(browser: Any, live_server: Server) -> Iterator[Any]:
    context, watch = open_context(browser, live_server)
    page = context.new_page()
    page.watch = watch
    yield page
    context.close()
    assert watch.elsewhere == [], f"requests left the server's origin: {watch.elsewhere}"
    # Errors a page logs on its own: a CSP refusal, a failed script. (A 4xx the test asked
    # for on purpose is logged as "Failed to load resource" too: those are allowed.)
    unexpected = [e for e in watch.errors if "Failed to load resource" not in e]
    assert unexpected == [], unexpected


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    # Evaluated through the DevTools protocol, so the page's CSP (no inline script) allows it.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def stop_redirects(page: Any, path: str) -> list[str]:
    """Requests to `path` reach the server (a click is counted, a password checked), but a
    redirect it answers is not followed: its Location is listed, and the page says so.
    A short link's target is another origin, which the tests must not reach."""
    locations: list[str] = []

    def handle(route: Any) -> None:
        response = route.fetch(max_redirects=0)
        if 300 <= response.status < 400:
            locations.append(response.headers["location"])
            route.fulfill(status=200, content_type="text/plain", body="redirected")
        else:
            route.fulfill(response=response)

    page.route(f"**{path}", handle)
    return locations


WIDTHS = {1280: 800, 360: 740}


@pytest.fixture(params=[(w, s) for w in WIDTHS for s in ("light", "dark")], ids=str)
def looking(request: Any, browser: Any, live_server: Any) -> Iterator[tuple[Any, str]]:
    width, scheme = request.param
    context, watch = open_context(
        browser,
        live_server,
        viewport={"width": width, "height": WIDTHS[width]},
        color_scheme=scheme,
    )
    yield context.new_page(), f"{width}-{scheme}"
    context.close()
    assert watch.elsewhere == []


def look(page: Any, name: str, variant: str, *, full_page: bool = True) -> None:
    """axe finds nothing serious, nothing is wider than the screen; with SCREENSHOTS set,
    the page is saved (`full_page=False`: the first screen only, for a very long page)."""
    violations = axe_violations(page)
    assert violations == [], f"{name} {variant}: {violations}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} {variant} is {overflow}px wider than the screen"
    folder = os.environ.get("SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}-{variant}.png"), full_page=full_page)


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    """Through the sign-in form, to the links page."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/links")
