"""A link's form on the pages: its fields as typed, turned into the API's bodies, and the
API's errors turned back into the fields they concern.

The form speaks strings: dates are `datetime-local` values read as UTC, tags one text with
commas, redirect rules rows of (device, language, country, query, target) where an empty
row is no rule. Validation is the API's own (CreateLink, UpdateLink), so the two cannot
disagree; this only translates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import ValidationError
from starlette.datastructures import FormData

from app.modules.shortener.rules import MAX_RULES
from app.modules.shortener.service import Link

TEXT_FIELDS = ("url", "code", "title", "tags", "expires_at", "valid_from", "max_visits")
RULE_FIELDS = ("device", "language", "country", "query", "url")
DEVICES = ("ios", "android", "mobile", "desktop")
EMPTY_ROWS = 3
# Every field a link's form can send: its own, and MAX_RULES rows of RULE_FIELDS.
MAX_FIELDS = len(TEXT_FIELDS) + 4 + MAX_RULES * len(RULE_FIELDS)
_MOMENT = "%Y-%m-%dT%H:%M"


class FormError(Exception):
    """What the form says wrong before the API's schema sees it, by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def blank_rule() -> dict[str, str]:
    return dict.fromkeys(RULE_FIELDS, "")


def with_empty_rows(rules: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows to show: those given, then empty ones to fill (as many as rules may be)."""
    room = max(0, MAX_RULES - len(rules))
    return [*rules, *(blank_rule() for _ in range(min(EMPTY_ROWS, room)))]


def blank_form() -> dict[str, Any]:
    return {
        **dict.fromkeys(TEXT_FIELDS, ""),
        "forward_query": False,
        "remove_password": False,
        "rules": with_empty_rows([]),
    }


def typed(form: FormData) -> dict[str, Any]:
    """The form as typed (strings, rows), to read and to show again. Never the password."""
    values: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in TEXT_FIELDS}
    values["tags"] = str(form.get("tags", ""))
    values["forward_query"] = form.get("forward_query") is not None
    values["remove_password"] = form.get("remove_password") is not None
    rows = []
    for number in range(MAX_RULES):
        row = {name: str(form.get(f"rule-{number}-{name}", "")).strip() for name in RULE_FIELDS}
        if any(row.values()):
            rows.append(row)
    values["rules"] = rows
    return values


def _moment(text: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A `datetime-local` value (or a date) read as UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors[field] = "A date and time, such as 2030-12-31T23:59 (UTC)."
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rule(row: Mapping[str, str], number: int, errors: dict[str, str]) -> dict[str, Any]:
    when: dict[str, Any] = {
        name: row[name] for name in ("device", "language", "country") if row[name]
    }
    if row["query"]:
        pairs = parse_qsl(row["query"], keep_blank_values=True)
        if not pairs:
            errors[f"rule-{number}-query"] = "Parameters as name=value, joined by &."
        when["query"] = dict(pairs)
    return {"when": when, "url": row["url"]}


def body(values: Mapping[str, Any]) -> dict[str, Any]:
    """The API's body for what was typed: every field of the form, blanks as null
    (FormError for what is not even of the right kind)."""
    errors: dict[str, str] = {}
    max_visits: int | None = None
    if values["max_visits"]:
        try:
            max_visits = int(values["max_visits"])
        except ValueError:
            errors["max_visits"] = "A whole number of visits, 1 or more."
    data = {
        "url": values["url"],
        "title": values["title"] or None,
        "tags": [tag for tag in values["tags"].split(",") if tag.strip()],
        "expires_at": _moment(values["expires_at"], "expires_at", errors),
        "valid_from": _moment(values["valid_from"], "valid_from", errors),
        "max_visits": max_visits,
        "forward_query": values["forward_query"],
        "redirect_rules": [_rule(row, n, errors) for n, row in enumerate(values["rules"])],
    }
    if errors:
        raise FormError(errors)
    return data


def field_of(location: Sequence[int | str]) -> str:
    """The form's field for an error's location (`redirect_rules.0.when.device` is the
    device of the first row; a rule's own error, such as no condition, its row)."""
    if not location:
        return "url"
    if location[0] == "redirect_rules" and len(location) > 1 and str(location[1]).isdigit():
        row = f"rule-{location[1]}"
        if len(location) > 3 and location[2] == "when" and location[3] in RULE_FIELDS:
            return f"{row}-{location[3]}"
        if len(location) > 2 and location[2] == "url":
            return f"{row}-url"
        return row
    return str(location[0])


def schema_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in exc.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        errors.setdefault(field_of(tuple(item["loc"])), message)
    return errors


def problem_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A Problem's `errors` (fields named like `redirect_rules.0.url`) by the form's field."""
    return {field_of(str(e["field"]).split(".")): str(e["message"]) for e in errors}


def rules_open(rows: Sequence[Mapping[str, str]], errors: Mapping[str, str]) -> bool:
    """The rules are shown when one is set or wrong; else they wait, folded, out of the way."""
    wrong = any(name.startswith(("rule-", "redirect_rules")) for name in errors)
    return wrong or any(any(row.values()) for row in rows)


def _shown(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime(_MOMENT) if moment else ""


def link_values(link: Link) -> dict[str, Any]:
    """The edit form of a link as it is now (the password never: only whether it has one)."""
    rules = []
    for rule in link.redirect_rules:
        when = rule.get("when", {})
        row = {name: str(when.get(name) or "") for name in ("device", "language", "country")}
        row["query"] = urlencode(when.get("query") or {})
        row["url"] = str(rule.get("url", ""))
        rules.append(row)
    return {
        "url": link.target_url,
        "code": link.code,
        "title": link.title or "",
        "tags": ", ".join(link.tags),
        "expires_at": _shown(link.expires_at),
        "valid_from": _shown(link.valid_from),
        "max_visits": "" if link.max_visits is None else str(link.max_visits),
        "forward_query": link.forward_query,
        "remove_password": False,
        "rules": rules,
    }


def changed(data: dict[str, Any], typed: Mapping[str, Any], now: Mapping[str, Any]) -> set[str]:
    """The fields of `data` the person changed: the rest are left out of the change, so an
    expiry long past or a target since refused does not stop another field's edit."""
    names = {"url", "title", "tags", "expires_at", "valid_from", "max_visits", "forward_query"}
    kept = {name for name in names if typed[name] == now[name]}
    if typed["tags"] != now["tags"] and data["tags"] == [
        t.strip() for t in str(now["tags"]).split(",") if t.strip()
    ]:
        kept.add("tags")
    if typed["rules"] == now["rules"]:
        kept.add("redirect_rules")
    return set(data) - kept
