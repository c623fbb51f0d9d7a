"""What a page reads from a request: text PostgreSQL can store, or a 400 page.

A browser never sends NUL in a field or a URL, but a hand-made request can, and
PostgreSQL's text refuses it (a 500 at the first query). The JSON API refuses it as it
parses the body (app.kernel.http); a page's form and query refuse it here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request

from app.kernel.problems import Problem

log = logging.getLogger(__name__)


def _refuse_nul(values: Iterable[object]) -> None:
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise Problem(400, "Text must not contain NUL characters.", slug="invalid-text")


def check_query(request: Request) -> None:
    """The query's names and values are storable text, or a 400."""
    _refuse_nul(item for pair in request.query_params.multi_items() for item in pair)


async def read_form(request: Request, max_fields: int) -> FormData:
    """The form's fields (no files), each storable text, or a 400."""
    try:
        form = await request.form(max_files=0, max_fields=max_fields)
    except ClientDisconnect:
        # Nobody is left to answer (a body refused as too large, a client gone): no error
        # logged with a traceback, as for a JSON body (app.kernel.http.read_json).
        log.debug("the client left before sending all of the form of %s", request.url.path)
        raise Problem(
            400, "The client disconnected before the form was complete.", slug="incomplete-body"
        ) from None
    _refuse_nul(item for pair in form.multi_items() for item in pair)
    return form
