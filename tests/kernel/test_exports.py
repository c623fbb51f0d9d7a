"""The export helpers: a JSONL line is byte for byte what the API answers; CSV cells that a
spreadsheet would run are defused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from starlette.responses import JSONResponse

from app.kernel.exports import csv_lines, jsonl_line, safe_cell


class Thing(BaseModel):
    text: str
    when: datetime
    tags: list[str]
    count: int | None
    flag: bool


def test_a_jsonl_line_is_the_json_responses_body_and_a_newline() -> None:
    thing = Thing(
        text='é "quoted" \\ \x01 \u2028 \x7f 😀',
        when=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        tags=["ß", ""],
        count=None,
        flag=True,
    )

    assert jsonl_line(thing) == JSONResponse(thing.model_dump(mode="json")).body + b"\n"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("https://example.com/", "https://example.com/"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
    ],
)
def test_a_cell_that_a_spreadsheet_would_run_starts_with_a_quote(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_lines_quote_as_rfc_4180_says() -> None:
    assert csv_lines([["a,b", 'say "hi"', "=1"]]) == b'"a,b","say ""hi""",\'=1\r\n'
