"""What a page reads from a request: text PostgreSQL can store, or a 400 page.

A browser never sends NUL in a field or a URL, but a hand-made request can, and
PostgreSQL's text refuses it (a 500 at the first query). The JSON API refuses it as it
parses the body (app.kernel.http); a page's form and query refuse it here.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import FormData
from starlette.requests import Request

from app.kernel.problems import Problem


def _refuse_nul(values: Iterable[object]) -> None:
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise Problem(400, "Text must not contain NUL characters.", slug="invalid-text")


def check_query(request: Request) -> None:
    """The query's names and values are storable text, or a 400."""
    _refuse_nul(item for pair in request.query_params.multi_items() for item in pair)


async def read_form(request: Request, max_fields: int) -> FormData:
    """The form's fields (no files), each storable text, or a 400."""
    form = await request.form(max_files=0, max_fields=max_fields)
    _refuse_nul(item for pair in form.multi_items() for item in pair)
    return form
