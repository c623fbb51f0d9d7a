"""A page's form read by read_form: a client gone mid-body is a 400, not an error logged."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.types import Message

from app.kernel.problems import Problem
from app.kernel.web import read_form


async def test_a_client_gone_before_the_form_ends_is_a_400() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"url=https", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/links",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "query_string": b"",
    }
    with pytest.raises(Problem) as refused:
        await read_form(Request(scope, receive), 10)
    assert refused.value.status == 400
