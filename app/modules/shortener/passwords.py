"""Link passwords: hashed when a link is given one, checked at `POST /{code}`.

A password is hashed with argon2id in the shortener's own bounded pool (app.kernel.hashing;
one hash per client at a time, a bounded queue) and only the hash is stored; no event
carries it. `POST /{code}` with the form field `password` answers the redirect (303, so
the browser fetches the target with GET and never re-posts the password) when it is right,
counting the visit there and then exactly like a redirect, and the form again with 401
when it is wrong. Wrong guesses are throttled per client and link (protection.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.kernel.database import driver_connection
from app.kernel.hashing import HashInFlight, HashQueueFull, Passwords
from app.kernel.http import client_ip, client_key, read_urlencoded
from app.kernel.problems import Problem, problem_response
from app.kernel.settings import IPNetwork
from app.modules.shortener.codes import ANY_CODE, RESERVED
from app.modules.shortener.protection import (
    WRONG,
    GuessThrottle,
    Page,
    Throttled,
    form_page,
    password_problem,
    wants_json,
)
from app.modules.shortener.redirect import Redirector, gone, not_found
from app.modules.shortener.service import Links

_MAX_FORM_BYTES = 4096
_STORED_HASH = "SELECT password_hash FROM urls WHERE code = $1 AND deleted_at IS NULL"
_FORM_TYPE = "application/x-www-form-urlencoded"


def _hash_in_flight() -> Problem:
    return Problem(
        429,
        "A password of this client is still being checked. Try again in a second.",
        slug="password-check-in-progress",
        headers={"Retry-After": "1"},
    )


def _busy() -> Problem:
    return Problem(
        503,
        "Too many password checks are waiting. Try again in a second.",
        slug="password-checks-busy",
        headers={"Retry-After": "1"},
    )


class LinkPasswords:
    def __init__(
        self,
        links: Links,
        redirector: Redirector,
        passwords: Passwords,
        throttle: GuessThrottle,
        trusted_proxies: Sequence[IPNetwork],
    ) -> None:
        self._links = links
        self._redirector = redirector
        self._passwords = passwords
        self._throttle = throttle
        self._trusted = trusted_proxies

    async def close(self) -> None:
        await self._passwords.close()

    def _client(self, request: Request) -> str:
        return client_key(client_ip(request, self._trusted))

    async def hash(self, request: Request, password: str) -> str:
        """The hash to store for a link's new password (429/503 when the pool says so)."""
        try:
            with self._passwords.slot(self._client(request)) as slot:
                return await self._passwords.hash(password, slot=slot)
        except HashInFlight:
            raise _hash_in_flight() from None
        except HashQueueFull:
            raise _busy() from None

    async def unlock(self, request: Request) -> Response:
        """`POST /{code}`: the redirect for the right password, the form again for a wrong one."""
        code: str = request.path_params["code"]
        if code.lower() in RESERVED:  # another route's path (`/healthz`): not a link's
            raise HTTPException(405)
        # The scan guard counts a POST's misses as a GET's: else a 404 here and a 405 for a
        # link without password tell which codes exist, unlimited.
        guard = self._redirector.guard
        if guard is not None and guard.blocking and (refused := guard.refused(request.scope)):
            raise refused
        link = await self._links.resolve(code) if ANY_CODE.fullmatch(code) else None
        if link is None or link.is_pending():
            if (
                guard is not None
                and link is None
                and ANY_CODE.fullmatch(code)
                and (refused := await guard.missed(request.scope)) is not None
            ):
                raise refused
            raise not_found(code)
        if link.refused is not None:  # disabled by an admin, or its domain blocked
            raise Problem(410, link.refused, slug="link-disabled")
        if link.is_gone():
            raise gone(code)
        if not link.has_password:
            raise Problem(
                405,
                f"The link '{code}' has no password: GET it.",
                headers={"Allow": "GET, HEAD"},
            )
        as_json = wants_json(request.scope)
        password = await _form_password(request)
        if not password:
            return _refused(code, as_json, "Enter the password.")
        client = self._client(request)
        try:
            with self._passwords.slot(client) as slot:
                guess = self._throttle.guess(client, code)
                hashed = await self._stored_hash(code)
                if hashed is not None:  # None: the password was removed meanwhile
                    right, _ = await self._passwords.verify(password, hashed, slot=slot)
                    if not right:
                        return _refused(code, as_json, WRONG)
                guess.right()
        except HashInFlight:
            raise _hash_in_flight() from None
        except HashQueueFull:
            raise _busy() from None
        except Throttled as exc:
            return _throttled(code, as_json, exc.retry_after)
        outcome = await self._redirector.unlocked(request.scope, code)
        if isinstance(outcome, Problem):
            return problem_response(outcome)
        location = outcome.location(request.scope["query_string"]).decode("latin-1")
        return Response(
            status_code=303, headers={"Location": location, "Cache-Control": "no-store"}
        )

    async def _stored_hash(self, code: str) -> str | None:
        async with driver_connection(self._links.engine) as driver:
            hashed: str | None = await driver.fetchval(_STORED_HASH, code, timeout=10.0)
            return hashed


async def _form_password(request: Request) -> str | None:
    """The `password` field of an urlencoded form (the page's); 415 or 413 otherwise."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _FORM_TYPE:
        raise Problem(
            415,
            f"Send the password as the form field 'password' ({_FORM_TYPE}).",
            slug="unsupported-media-type",
        )
    fields = await read_urlencoded(request, _MAX_FORM_BYTES, max_fields=20)
    return next((value for name, value in fields if name == "password"), None)


def _page_response(page: Page) -> Response:
    return Response(
        page.body,
        status_code=page.status,
        headers={name.decode(): value.decode() for name, value in page.headers()},
    )


def _refused(code: str, as_json: bool, message: str) -> Response:
    if as_json:
        return problem_response(password_problem(code, message))
    return _page_response(form_page(code, 401, message))


def _throttled(code: str, as_json: bool, retry_after: int) -> Response:
    message = f"Too many wrong passwords. Try again in {retry_after} seconds."
    headers = {"Retry-After": str(retry_after)}
    if as_json:
        return problem_response(Problem(429, message, slug="too-many-attempts", headers=headers))
    response = _page_response(form_page(code, 429, message, form=False))
    response.headers.update(headers)
    return response
