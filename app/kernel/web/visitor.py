"""Who a page is for: the person the session cookie names, checked by the module's Gate.

A page without a live session sends the browser to auth's `/auth/refresh?next=<here>`,
which renews the session from the refresh cookie or asks for a sign-in, then comes back.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.kernel.access import Gate
from app.kernel.problems import Problem
from app.kernel.session import SESSION_COOKIE
from app.kernel.tokens import Principal
from app.kernel.web.forms import check_query


async def visitor(gate: Gate, request: Request, scope: str | None = None) -> Principal | Response:
    """The signed-in principal, or the redirect that renews the session.

    A 403 (an account that lacks the scope) is raised as the Problem it is: the kernel
    answers it as an error page. A query PostgreSQL could not store (NUL) is a 400.
    """
    check_query(request)
    if SESSION_COOKIE in request.cookies:
        try:
            return await gate.authenticate(request, scope)
        except Problem as problem:
            if problem.status != 401:
                raise
    return renew_session(request)


def renew_session(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/auth/refresh?next={quote(here, safe='/')}", status_code=303)
