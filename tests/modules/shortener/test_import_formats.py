"""The export readers, alone: each tool's sample file read into rows, line numbers, dates,
click totals, and the rows that cannot be read (no database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.modules.shortener.import_formats import (
    LOCKED_REFUSAL,
    MAX_JSON_BYTES,
    FormatError,
    ImportRow,
    parse,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"


def rows(format: str, text: str) -> list[ImportRow]:
    return list(parse(format, text.splitlines(keepends=True)))


def fixture(format: str, name: str) -> dict[int, ImportRow]:
    with (FIXTURES / name).open(newline="", encoding="utf-8-sig") as lines:
        return {row.line: row for row in parse(format, lines)}


def test_shlink_export_columns_tags_and_visits() -> None:
    read = fixture("shlink", "shlink.csv")

    docs = read[2]
    assert docs.link == {
        "url": "https://shlink.io/documentation/",
        "code": "shl-docs",
        "title": "Shlink docs",
        "tags": ["docs", "shlink"],
        "forward_query": True,  # Shlink's default
    }
    assert docs.created_at == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert docs.clicks == 42
    # Hostile targets are read as they are: the API's checks refuse them later.
    assert read[4].link["url"] == "javascript:alert(document.cookie)"
    assert sorted(read) == list(range(2, 10))


def test_kutt_table_refuses_locked_and_banned_links_and_never_repeats_a_hash() -> None:
    read = fixture("kutt", "kutt_links.csv")

    assert read[2].link["code"] == "kutt-home" and read[2].clicks == 17
    assert read[3].link["expires_at"] == datetime(2999, 1, 1, tzinfo=UTC)
    assert read[4].refusal == LOCKED_REFUSAL and "$2a$" not in read[4].refusal
    assert read[5].refusal == "banned on the source instance"


def test_kutt_and_yourls_api_dumps_are_numbered_by_position() -> None:
    kutt = fixture("kutt", "kutt_api.json")
    yourls = fixture("yourls", "yourls_stats.json")

    assert kutt[1].link["code"] == "kutt-api" and kutt[1].clicks == 8
    assert kutt[2].refusal == LOCKED_REFUSAL
    assert yourls[1].link == {
        "url": "https://example.com/from-yourls-api",
        "code": "yo-api",
        "title": "From the YOURLS API",
    }
    assert yourls[1].clicks == 57


def test_yourls_table_with_or_without_its_header_and_no_address_kept() -> None:
    with_header = fixture("yourls", "yourls_url.csv")
    bare = rows("yourls", "yo-a,https://example.com/a,A,2023-12-01 12:00:00,203.0.113.7,4\n")

    assert with_header[3].link["title"] == "Docs, with a comma"
    assert with_header[6].refusal == "clicks: not a click count ('lots')"
    assert [(row.line, row.link["code"], row.clicks) for row in bare] == [(1, "yo-a", 4)]
    assert "203.0.113.7" not in repr(bare)


@pytest.mark.parametrize("format", ["shlink", "kutt", "yourls", "bitly", "csv", "jsonl"])
@pytest.mark.parametrize("text", ["", "\n", "\r\n\n", " \n\n"])
def test_an_empty_or_blank_file_is_never_a_crash(format: str, text: str) -> None:
    """schemathesis sent a blank first line: each reader either reads nothing or says
    what is wrong with the file, never an IndexError (a 500)."""
    try:
        read = rows(format, text)
    except FormatError:
        return
    assert all(not row.link.get("url") for row in read), read  # nothing to store


def test_bitly_codes_come_from_the_bitlinks() -> None:
    read = fixture("bitly", "bitly.csv")

    assert read[2].link["code"] == "bit-blog" and read[2].link["tags"] == ["blog", "marketing"]
    assert read[3].link["code"] == "bit-two"  # a bitlink without its scheme
    assert read[2].created_at == datetime(2022, 5, 1, 12, tzinfo=UTC)
    assert read[2].clicks == 314


def test_generic_csv_any_column_order_quoted_cells_and_bad_dates() -> None:
    read = rows(
        "csv",
        'title,url,tags,code,created_at,clicks\n"A, quoted\nline",https://example.com/,"x, y",'
        "abc,1735689600,3\n"
        "B,https://example.com/b,,,2025-01-01 10:00,\n"
        "C,https://example.com/c,,,yesterday,\n"
        "D,https://example.com/d,,,,-1\n",
    )

    assert read[0].line == 2 and read[0].link["title"] == "A, quoted\nline"
    assert read[0].link["tags"] == ["x", " y"]  # trimmed by the API's own rules later
    assert read[0].created_at == datetime(2025, 1, 1, tzinfo=UTC) and read[0].clicks == 3
    assert read[1].line == 4 and read[1].link["code"] is None
    assert read[1].created_at == datetime(2025, 1, 1, 10, tzinfo=UTC)  # no zone: UTC
    assert read[2].refusal == "created_at: not a date and time ('yesterday')"
    assert read[3].refusal == "clicks: not a click count ('-1')"


def test_a_csv_without_its_header_or_with_extra_cells() -> None:
    with pytest.raises(FormatError, match="header"):
        rows("csv", "https://example.com/,abc\n")
    read = rows("csv", "url\nhttps://example.com/,extra\n")
    assert read[0].refusal == "2 cells, the header names 1"


def test_jsonl_carries_every_api_field_and_refuses_what_it_cannot_carry() -> None:
    read = fixture("jsonl", "encurta.jsonl")

    full = read[1]
    assert full.link["max_visits"] == 10 and full.link["forward_query"] is True
    assert full.clicks == 5 + 7  # counted there and imported there: imported here
    assert "short_url" not in full.link and "visits" not in full.link
    assert read[3].refusal == LOCKED_REFUSAL
    assert (read[5].refusal, read[6].refusal) == ("not a JSON value", "not a JSON object")


def test_json_dumps_are_bounded_and_must_be_json() -> None:
    def endless() -> Iterator[str]:
        yield "{"
        while True:
            yield " " * 1024 * 1024

    with pytest.raises(FormatError, match=str(MAX_JSON_BYTES)):
        parse("kutt", endless())
    with pytest.raises(FormatError, match="Not a JSON document"):
        rows("yourls", "{oops")
    with pytest.raises(FormatError, match="Unknown format"):
        parse("excel", [])


@pytest.mark.parametrize("item", ["{}", "[[]]", '{"a": {"b": []}}'])
def test_a_json_dump_of_tiny_objects_is_refused_before_it_is_parsed(item: str) -> None:
    """Within the byte bound, such a document parsed to 18 to 25 times its size."""
    count = MAX_JSON_BYTES // (len(item) + 2) - 10
    dense = '{"data": [' + ",\n".join([item] * count) + "]}"

    with pytest.raises(FormatError, match="Too many objects"):
        rows("kutt", dense)


def test_rows_are_read_lazily() -> None:
    """A reader takes lines as rows are asked for: a file of any size in bounded memory."""
    taken = 0

    def lines() -> Iterator[str]:
        nonlocal taken
        yield "url\n"
        while True:
            taken += 1
            yield f"https://example.com/{taken}\n"

    read = parse("csv", lines())
    first = [next(read) for _ in range(10)]

    assert first[-1].link["url"] == "https://example.com/10"
    assert taken <= 11


def test_encurtas_own_csv_export_keeps_what_guards_a_link_or_is_refused() -> None:
    header = "url,code,title,tags,created_at,expires_at,max_visits,forward_query,"
    header += "has_password,disabled,redirect_rules,click_count,imported_clicks\n"
    read = {
        row.line: row
        for row in rows(
            "csv",
            header
            + "https://a.example/,a-1,,,2024-01-01T00:00:00Z,2999-01-01T00:00:00Z,100,true,"
            + 'false,false,"[{""when"": [{""device"": ""ios""}], ""url"": ""https://b.example/""}]",3,4\n'
            + "https://a.example/,a-2,,,,,,false,true,false,[],0,0\n"
            + "https://a.example/,a-3,,,,,,false,false,true,[],0,0\n",
        )
    }

    assert read[2].link["expires_at"] == "2999-01-01T00:00:00Z"
    assert read[2].link["max_visits"] == "100" and read[2].link["forward_query"] == "true"
    assert read[2].link["redirect_rules"] == [
        {"when": [{"device": "ios"}], "url": "https://b.example/"}
    ]
    assert read[2].clicks == 7
    assert read[3].refusal == LOCKED_REFUSAL
    assert read[4].refusal == "disabled by an admin on the source instance"
