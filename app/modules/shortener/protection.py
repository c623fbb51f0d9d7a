"""What a password link answers instead of its redirect: a small HTML form in the app's
layout (a 401 problem to a client that asks for JSON), and the throttle on wrong guesses.

The page is static but for the escaped short code and a message: no script, nothing from
another origin (the app's own stylesheet only), and headers that keep it out of frames,
caches and search engines.
The form posts to the same URL (its query string kept, for rules and forwarding).
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Scope, Send

from app.kernel.express import ExpressResponse, status_line
from app.kernel.problems import Problem
from app.kernel.web import PAGE_HEADERS, Pages, error_page, scope_signed_in, scope_wants_html

_MAX_TRACKED = 100_000  # (client, link) pairs with recent wrong guesses, per process

_HEADERS = (
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # No script: nothing but the app's stylesheet to load. No form-action: the form's
    # answer is a redirect to the link's target, which form-action would block in some
    # browsers.
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow"),
)

_STYLED_HEADERS = (
    (b"content-type", b"text/html; charset=utf-8"),
    *((name.lower().encode(), value.encode()) for name, value in PAGE_HEADERS.items()),
)

ASK = "Enter its password to continue."
WRONG = "Wrong password. Try again."


@dataclass(frozen=True, slots=True)
class Page:
    """An HTML answer, for the ASGI path and the express lane alike."""

    status: int
    body: bytes
    # The headers of a page in the app's layout (its stylesheet), else the bare form's.
    styled: bool = False

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        fixed = _STYLED_HEADERS if self.styled else _HEADERS
        return (*fixed, (b"content-length", str(len(self.body)).encode()))

    def express(self) -> ExpressResponse:
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in self.headers())
        return ExpressResponse(status_line(self.status) + lines, self.body)

    async def send(self, scope: Scope, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status}
        await send({**start, "headers": list(self.headers())})
        body = b"" if scope["method"] == "HEAD" else self.body  # HEAD: the head alone
        await send({"type": "http.response.body", "body": body})


@functools.cache
def _pages() -> Pages:
    return Pages(Path(__file__).parent / "templates")


def form_page(code: str, status: int = 200, message: str = ASK, *, form: bool = True) -> Page:
    """The password form in the app's layout (autoescaped: the code and message are text)."""
    context = {"code": code, "status": status, "message": message, "form": form}
    return Page(status, _pages().html("link_password.html", context).encode())


def for_browser(scope: Scope, problem: Problem) -> Problem | Page:
    """A link's 404 or 410 as a page in the app's layout for a browser; else the problem."""
    if problem.status not in (404, 410) or not scope_wants_html(scope):
        return problem
    body = error_page(
        problem.status, problem.title, problem.detail, signed_in=scope_signed_in(scope)
    )
    return Page(problem.status, body.encode(), styled=True)


def password_problem(code: str, message: str = ASK) -> Problem:
    return Problem(
        401,
        f"The link '{code[:64]}' is protected by a password: POST it as the form field "
        f"'password' to /{code[:64]}. {message}",
        slug="link-password-required",
    )


def wants_json(scope: Scope) -> bool:
    """The client's Accept names a JSON type and not HTML (browsers name HTML)."""
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value.lower()
            return (b"json" in accept) and b"text/html" not in accept
    return False


def challenge(scope: Scope, code: str) -> Page | Problem:
    """The answer to `GET`/`HEAD` of a password link: the form, or a 401 problem."""
    return password_problem(code) if wants_json(scope) else form_page(code)


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Guess:
    """One password guess, counted as wrong from the moment it is let through (so that a
    burst of concurrent guesses is no more than the limit); `right()` forgets the
    client's wrong guesses for the link."""

    def __init__(self, throttle: GuessThrottle, key: tuple[str, str]) -> None:
        self._throttle = throttle
        self._key = key

    def right(self) -> None:
        self._throttle._forget(self._key)


class GuessThrottle:
    """At most `guesses` wrong passwords per client and link in a sliding window of
    `window_seconds`; kept in this process (each replica keeps its own)."""

    def __init__(
        self, guesses: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._guesses = guesses
        self._window = window_seconds
        self._clock = clock
        self._wrong: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def guess(self, client: str, code: str) -> Guess:
        """Let one guess through, or raise Throttled with the seconds to wait."""
        key = (client, code)
        now = self._clock()
        times = self._wrong.get(key)
        if times is None:
            times = self._wrong[key] = deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self._guesses:
            raise Throttled(max(1, math.ceil(times[0] + self._window - now)))
        times.append(now)
        self._wrong.move_to_end(key)
        while len(self._wrong) > _MAX_TRACKED:
            self._wrong.popitem(last=False)
        return Guess(self, key)

    def _forget(self, key: tuple[str, str]) -> None:
        self._wrong.pop(key, None)
