"""Reading other shorteners' exports (and encurta's own) as rows of links: pure, no database.

Each format turns lines of text into `ImportRow`s, one per link, numbered by the line it
starts on; a row that cannot be read is a row with a `refusal`, never an exception, so one
bad row does not stop an import. What every link must satisfy (its target, its code, its
title and tags) is not checked here but by the API's own rules (imports.py).

Line-based formats (every CSV, JSON Lines) are read row by row: memory stays bounded
whatever the file's size. The JSON documents of the Kutt and YOURLS APIs are one value
each; they are read whole, up to `MAX_JSON_BYTES`.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

FORMATS = ("shlink", "kutt", "yourls", "bitly", "csv", "jsonl")
# Python's objects for a JSON document take many times its size: 64 MiB of `{},` or
# `[[]],` parsed to about 1.6 GB. The APIs' dumps are pages (Kutt's are 50 links at
# most), so the bound is small, and a document denser in objects and lists than any
# export of links (`MAX_CONTAINER_DENSITY`) is refused before it is parsed.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_CONTAINER_DENSITY = 32  # bytes per object or list, at the least; a link takes hundreds
_FEW_CONTAINERS = 1000
MAX_CLICKS = 2**62
LOCKED_REFUSAL = (
    "a password-protected link: its password is not in the export (create it again with "
    "its password)"
)


class FormatError(ValueError):
    """The file as a whole is not of the format named (no row can be read)."""


class _Refused(ValueError):
    """This row cannot be read; the message says why."""


@dataclass(frozen=True)
class ImportRow:
    """One link as the export gives it: `link` holds the API's creation fields (CreateLink's
    names), `clicks` the source's click total, `created_at` when the source created it."""

    line: int
    link: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    clicks: int = 0
    refusal: str | None = None


def parse(format: str, lines: Iterable[str]) -> Iterator[ImportRow]:
    """The rows of `lines` (text lines, line ends kept) read as `format` (FormatError)."""
    readers = {
        "shlink": _shlink,
        "kutt": _kutt,
        "yourls": _yourls,
        "bitly": _bitly,
        "csv": _generic,
        "jsonl": _jsonl,
    }
    if format not in readers:
        raise FormatError(f"Unknown format; one of: {', '.join(FORMATS)}.")
    return readers[format](iter(lines))


def _key(name: str) -> str:
    """A column name compared without case, spaces or punctuation: `Long URL` is `longurl`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _moment(value: Any, name: str) -> datetime | None:
    """ISO 8601 (a time without zone is UTC) or Unix seconds."""
    text = _text(value)
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{1,12}(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise _Refused(f"{name}: not a date and time ({text[:40]!r})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _clicks(value: Any, name: str) -> int:
    text = _text(value)
    if text is None:
        return 0
    if not re.fullmatch(r"\d{1,19}", text) or int(text) > MAX_CLICKS:
        raise _Refused(f"{name}: not a click count ({text[:40]!r})")
    return int(text)


def _code_of(short_url: Any) -> str | None:
    """The code of a short URL (its path's last segment), or the value if it is a code."""
    text = _text(short_url)
    if text is None:
        return None
    return urlsplit(text if "//" in text else f"//{text}").path.rstrip("/").rsplit("/", 1)[-1]


def _tags(value: Any, separators: str) -> list[str]:
    text = _text(value)
    if text is None:
        return []
    return [tag for tag in re.split(f"[{re.escape(separators)}]", text) if tag.strip()]


def _row(line: int, build: Any, *args: Any) -> ImportRow:
    try:
        made: ImportRow = build(line, *args)
    except _Refused as refused:
        return ImportRow(line=line, refusal=str(refused))
    return made


def _csv_records(lines: Iterator[str]) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line, cells or None, the reason it could not be read), record by record."""
    reader = csv.reader(lines, strict=True)
    last = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield last + 1, None, f"not a valid CSV record ({exc})"
            last = reader.line_num
            continue
        first, last = last + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield first, cells, None


def _csv_dicts(
    lines: Iterator[str], needed: str
) -> Iterator[ImportRow | tuple[int, dict[str, str]]]:
    """Records under their header's names (as `_key` folds them); `needed` must be one."""
    records = _csv_records(lines)
    header = next(records, None)
    if header is None:
        return
    if header[1] is None or needed not in {_key(name) for name in header[1]}:
        raise FormatError(f"The first line must be the header, with a column {needed!r}.")
    names = [_key(name) for name in header[1]]
    for line, cells, problem in records:
        if cells is None:
            yield ImportRow(line=line, refusal=problem)
        elif len(cells) > len(names):
            yield ImportRow(line=line, refusal=f"{len(cells)} cells, the header names {len(names)}")
        else:
            yield line, dict(zip(names, cells, strict=False))


def _from_dicts(lines: Iterator[str], needed: str, build: Any) -> Iterator[ImportRow]:
    for item in _csv_dicts(lines, needed):
        yield item if isinstance(item, ImportRow) else _row(item[0], build, item[1])


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        if record.get(name) not in (None, ""):
            return record[name]
    return None


# encurta's own CSV export has every field of a link after the generic columns: what
# guards a link travels with it, or the row is refused, never silently dropped.
_GUARDS = {
    "expiresat": "expires_at",
    "validfrom": "valid_from",
    "maxvisits": "max_visits",
    "forwardquery": "forward_query",
}


def _generic_row(line: int, record: dict[str, str]) -> ImportRow:
    if _text(record.get("haspassword")) == "true":
        raise _Refused(LOCKED_REFUSAL)
    if _text(record.get("disabled")) == "true":
        raise _Refused("disabled by an admin on the source instance")
    link: dict[str, Any] = {
        "url": _text(record.get("url")) or "",
        "code": _text(record.get("code")),
        "title": _text(record.get("title")),
        "tags": _tags(record.get("tags"), ",|"),
    }
    for column, name in _GUARDS.items():
        if (value := _text(record.get(column))) is not None:
            link[name] = value  # the API's validation reads the text as the JSON would
    if (rules := _text(record.get("redirectrules"))) not in (None, "[]"):
        try:
            link["redirect_rules"] = json.loads(rules or "")
        except ValueError:
            raise _Refused("redirect_rules: not the JSON of the export") from None
    clicks = _clicks(record.get("clicks"), "clicks")
    clicks += _clicks(record.get("clickcount"), "click_count")
    clicks += _clicks(record.get("importedclicks"), "imported_clicks")
    return ImportRow(
        line=line,
        link=link,
        created_at=_moment(record.get("createdat"), "created_at"),
        clicks=clicks,
    )


def _generic(lines: Iterator[str]) -> Iterator[ImportRow]:
    """encurta's generic CSV: a header, then `url,code,title,tags,created_at` (any order;
    only url required; tags separated by `,` or `|`; optional `clicks`)."""
    return _from_dicts(lines, "url", _generic_row)


def _shlink_row(line: int, record: dict[str, str]) -> ImportRow:
    return ImportRow(
        line=line,
        link={
            "url": _text(record.get("longurl")) or "",
            "code": _text(record.get("shortcode")) or _code_of(record.get("shorturl")),
            "title": _text(record.get("title")),
            "tags": _tags(record.get("tags"), "|"),
            "forward_query": True,  # Shlink's default; its export does not say
        },
        created_at=_moment(record.get("createdat"), "createdAt"),
        clicks=_clicks(record.get("visits"), "visits"),
    )


def _shlink(lines: Iterator[str]) -> Iterator[ImportRow]:
    """Shlink web client's "Export" (short_urls.csv): createdAt, domain, shortCode,
    shortUrl, longUrl, title, tags (joined by `|`), visits, read by their names."""
    return _from_dicts(lines, "longurl", _shlink_row)


def _bitly_row(line: int, record: dict[str, str]) -> ImportRow:
    return ImportRow(
        line=line,
        link={
            "url": _text(_first(record, "longurl", "destinationurl", "destination")) or "",
            "code": _code_of(_first(record, "bitlink", "link", "shortlink", "shorturl")),
            "title": _text(record.get("title")),
            "tags": _tags(record.get("tags"), ",|"),
        },
        created_at=_moment(_first(record, "createdat", "created", "datecreated"), "created"),
        clicks=_clicks(_first(record, "clicks", "totalclicks", "engagements"), "clicks"),
    )


def _bitly(lines: Iterator[str]) -> Iterator[ImportRow]:
    """Bitly's CSV export of links: a bitlink, its long URL, title, created date, tags and
    clicks, under the names Bitly's exports and API use (`Bitlink`/`link`, `Long URL`...)."""
    return _from_dicts(lines, "longurl", _bitly_row)


def _kutt_row(line: int, record: dict[str, Any]) -> ImportRow:
    password = record.get("password")
    if password not in (None, "", False, "false", "f", "0"):
        raise _Refused(LOCKED_REFUSAL)
    if str(record.get("banned", "")).lower() in ("true", "t", "1"):
        raise _Refused("banned on the source instance")
    return ImportRow(
        line=line,
        link={
            "url": _text(record.get("target")) or "",
            "code": _text(record.get("address")),
            "title": _text(record.get("description")),
            "expires_at": _moment(_first(record, "expire_in", "expirein"), "expire_in"),
        },
        created_at=_moment(_first(record, "created_at", "createdat"), "created_at"),
        clicks=_clicks(_first(record, "visit_count", "visitcount"), "visit_count"),
    )


def _kutt(lines: Iterator[str]) -> Iterator[ImportRow]:
    """Kutt: its `links` table as CSV (address, target, description, password, banned,
    visit_count, expire_in, created_at...) or its API's `GET /api/v2/links` JSON."""
    first, lines = _peek(lines)
    if first.startswith(("{", "[")):
        document = _whole_json(lines)
        items = document.get("data") if isinstance(document, dict) else document
        return _json_items(items, _kutt_row)
    return _from_dicts(lines, "target", _kutt_row)


_YOURLS_COLUMNS = ("keyword", "url", "title", "timestamp", "ip", "clicks")


def _yourls_row(line: int, record: dict[str, Any]) -> ImportRow:
    return ImportRow(
        line=line,
        link={
            "url": _text(record.get("url")) or "",
            "code": _text(record.get("keyword")) or _code_of(record.get("shorturl")),
            "title": _text(record.get("title")),
        },
        created_at=_moment(record.get("timestamp"), "timestamp"),
        clicks=_clicks(record.get("clicks"), "clicks"),
    )  # `ip` is never kept: no raw address is stored


def _yourls(lines: Iterator[str]) -> Iterator[ImportRow]:
    """YOURLS: its `yourls_url` table as CSV (keyword, url, title, timestamp, ip, clicks;
    with or without that header) or its API's `action=stats&format=json` answer."""
    first, lines = _peek(lines)
    if first.startswith(("{", "[")):
        document = _whole_json(lines)
        links = document.get("links") if isinstance(document, dict) else document
        return _json_items(list(links.values()) if isinstance(links, dict) else links, _yourls_row)
    cells = next(csv.reader([first]), [])  # none for an empty first line
    if not cells or _key(cells[0]) != "keyword":
        header = ",".join(_YOURLS_COLUMNS) + "\n"
        return _renumbered(_from_dicts(itertools.chain([header], lines), "url", _yourls_row))
    return _from_dicts(lines, "url", _yourls_row)


def _renumbered(rows: Iterator[ImportRow]) -> Iterator[ImportRow]:
    """Rows of a file without its header line, numbered as in that file."""
    for row in rows:
        yield ImportRow(row.line - 1, row.link, row.created_at, row.clicks, row.refusal)


def _jsonl_row(line: int, item: dict[str, Any]) -> ImportRow:
    if item.get("has_password"):
        raise _Refused(LOCKED_REFUSAL)
    if item.get("disabled"):
        raise _Refused("disabled by an admin on the source instance")
    link: dict[str, Any] = {
        name: item[name]
        for name in (
            "url",
            "code",
            "title",
            "tags",
            "expires_at",
            "valid_from",
            "max_visits",
            "forward_query",
            "redirect_rules",
        )
        if name in item
    }
    counted = _clicks(item.get("click_count"), "click_count")
    carried = _clicks(item.get("imported_clicks"), "imported_clicks")
    return ImportRow(
        line=line,
        link=link,
        created_at=_moment(item.get("created_at"), "created_at"),
        clicks=counted + carried,
    )


def _jsonl(lines: Iterator[str]) -> Iterator[ImportRow]:
    """encurta's own export (`encurta export links --format jsonl`): one link a line, as
    the API's link JSON has it. Its counted and imported clicks are imported clicks here."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError:
            yield ImportRow(line=number, refusal="not a JSON value")
            continue
        if not isinstance(item, dict):
            yield ImportRow(line=number, refusal="not a JSON object")
            continue
        yield _row(number, _jsonl_row, item)


def _peek(lines: Iterator[str]) -> tuple[str, Iterator[str]]:
    for text in lines:
        if text.strip():
            return text.lstrip(), itertools.chain([text], lines)
    return "", iter(())


def _whole_json(lines: Iterator[str]) -> Any:
    text, size = [], 0
    for line in lines:
        size += len(line)
        if size > MAX_JSON_BYTES:
            raise FormatError(f"A JSON document is read whole: at most {MAX_JSON_BYTES} bytes.")
        text.append(line)
    whole = "".join(text)
    containers = whole.count("{") + whole.count("[")  # in strings too: an upper bound
    if containers > max(_FEW_CONTAINERS, len(whole) // MAX_CONTAINER_DENSITY):
        raise FormatError("Too many objects and lists for the document's size.")
    try:
        return json.loads(whole)
    except ValueError:
        raise FormatError("Not a JSON document.") from None


def _json_items(items: Any, build: Any) -> Iterator[ImportRow]:
    """The API dump's links, numbered from 1 in the order given."""
    if not isinstance(items, list):
        raise FormatError("No list of links in this JSON document.")
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield _row(number, build, item)
        else:
            yield ImportRow(line=number, refusal="not a JSON object")
