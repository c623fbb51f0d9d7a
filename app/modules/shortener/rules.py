"""Redirect rules: an ordered list of `{"when": {...}, "url": "..."}` on a link; the first
rule whose every condition holds for a visit picks the target, else the link's own URL.

Conditions: `device` (`ios`, `android`, `mobile`, `desktop`, from the User-Agent),
`language` (a tag that is a prefix of a language the visitor's Accept-Language lists with
q > 0: `pt` matches `pt-BR`, `pt-BR` does not match `pt`), `country` (ISO 3166 alpha-2,
from the same lookup a click's country comes from: the client address, through trusted
proxies, in geoip2fast's bundled data) and `query` (parameters the visit's query string
must carry with exactly those values; others may be there too).

Only links with rules pay for this: they are `guarded`, off the express lane's fast path,
and each condition reads only the header it needs, a few microseconds at most.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.types import Scope

MAX_RULES = 20
MAX_QUERY_PARAMETERS = 10
_MAX_PARAMETER = 200
_MAX_LANGUAGES = 20  # entries of an Accept-Language header looked at
_MAX_FIELDS = 100  # of a visit's query string
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_COUNTRY = re.compile(r"[A-Za-z]{2}")

Device = Literal["ios", "android", "mobile", "desktop"]


class When(BaseModel):
    """What a visit must be for its rule to apply: at least one condition, all of them hold."""

    model_config = ConfigDict(extra="forbid")

    device: Device | None = Field(default=None, description="ios, android, mobile or desktop.")
    language: str | None = Field(
        default=None,
        description="A language tag; `pt` matches a visitor who accepts pt or pt-BR.",
        max_length=35,
    )
    country: str | None = Field(
        default=None, description="ISO 3166 alpha-2, from the visitor's address."
    )
    query: dict[str, str] | None = Field(
        default=None, description="Query parameters the visit must carry with these values."
    )

    @field_validator("language")
    @classmethod
    def _language_tag(cls, language: str | None) -> str | None:
        if language is not None and not _LANGUAGE.fullmatch(language):
            raise ValueError("A language tag, such as pt or pt-BR.")
        return language

    @field_validator("country")
    @classmethod
    def _country_code(cls, country: str | None) -> str | None:
        if country is not None and not _COUNTRY.fullmatch(country):
            raise ValueError("An ISO 3166 alpha-2 country code, such as PT or BR.")
        return None if country is None else country.upper()

    @field_validator("query")
    @classmethod
    def _parameters(cls, query: dict[str, str] | None) -> dict[str, str] | None:
        if query is None:
            return None
        if not 1 <= len(query) <= MAX_QUERY_PARAMETERS:
            raise ValueError(f"1 to {MAX_QUERY_PARAMETERS} query parameters.")
        for name, value in query.items():
            if not 1 <= len(name) <= _MAX_PARAMETER or len(value) > _MAX_PARAMETER:
                raise ValueError(
                    f"Parameter names have 1 to {_MAX_PARAMETER} characters, values at most "
                    f"{_MAX_PARAMETER}."
                )
        return query

    @model_validator(mode="after")
    def _some_condition(self) -> When:
        if (
            self.device is None
            and self.language is None
            and self.country is None
            and not (self.query)
        ):
            raise ValueError(
                "A rule needs at least one condition: device, language, country or query."
            )
        return self


class RedirectRule(BaseModel):
    """Where visits that match `when` go instead of the link's URL."""

    model_config = ConfigDict(extra="forbid")

    when: When
    url: str = Field(description="Checked like the link's url.", max_length=4096)

    def stored(self) -> dict[str, Any]:
        """As the `redirect_rules` column and the link events hold it."""
        return {"when": self.when.model_dump(exclude_none=True), "url": self.url}


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule, ready to match (lowercased tag, uppercased country)."""

    url: str
    device: str | None = None
    language: str | None = None
    country: str | None = None
    query: tuple[tuple[str, str], ...] = ()


def compiled(stored: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """The rules of a link, from what its `redirect_rules` column holds."""
    rules = []
    for rule in stored:
        when = rule["when"]
        language = when.get("language")
        rules.append(
            Rule(
                url=rule["url"],
                device=when.get("device"),
                language=language.lower() if language else None,
                country=when.get("country"),
                query=tuple((when.get("query") or {}).items()),
            )
        )
    return tuple(rules)


def pick(rules: tuple[Rule, ...], scope: Scope, country: Callable[[], str | None]) -> str | None:
    """The target of the first rule that matches this visit, or None for the link's own.
    `country` is called at most once, and only if a rule asks for a country."""
    visit = _Visit(scope, country)
    for rule in rules:
        if (
            (rule.device is None or visit.device(rule.device))
            and (rule.language is None or visit.accepts(rule.language))
            and (rule.country is None or visit.country() == rule.country)
            and (not rule.query or visit.has_query(rule.query))
        ):
            return rule.url
    return None


class _Visit:
    """What the rules ask of one request, each part read once, when first asked for."""

    def __init__(self, scope: Scope, country: Callable[[], str | None]) -> None:
        self._scope = scope
        self._country_of = country
        self._agent: str | None = None
        self._languages: list[str] | None = None
        self._query: dict[str, list[str]] | None = None
        self._country: tuple[str | None] | None = None

    def _header(self, wanted: bytes) -> str:
        for name, value in self._scope["headers"]:
            if name == wanted:
                return str(value.decode("latin-1"))
        return ""

    def device(self, device: str) -> bool:
        if self._agent is None:
            self._agent = self._header(b"user-agent")[:512].lower()
        agent = self._agent
        ios = "iphone" in agent or "ipad" in agent or "ipod" in agent
        android = "android" in agent
        if device == "ios":
            return ios
        if device == "android":
            return android
        mobile = ios or android or "mobi" in agent
        return mobile if device == "mobile" else not mobile

    def accepts(self, language: str) -> bool:
        if self._languages is None:
            self._languages = _accepted(self._header(b"accept-language")[:1024])
        prefix = language + "-"
        return any(tag == language or tag.startswith(prefix) for tag in self._languages)

    def country(self) -> str | None:
        if self._country is None:
            self._country = (self._country_of(),)
        return self._country[0]

    def has_query(self, wanted: tuple[tuple[str, str], ...]) -> bool:
        if self._query is None:
            self._query = {}
            text = self._scope["query_string"].decode("utf-8", "replace")
            try:
                pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
            except ValueError:  # more fields than that: matches no rule's query
                pairs = []
            for name, value in pairs:
                self._query.setdefault(name, []).append(value)
        return all(value in self._query.get(name, ()) for name, value in wanted)


def _accepted(header: str) -> list[str]:
    """The language tags of an Accept-Language header with q > 0, lowercased (not `*`)."""
    tags = []
    for entry in header.split(",")[:_MAX_LANGUAGES]:
        tag, _, params = entry.partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                if float(quality[2:]) <= 0:
                    continue
            except ValueError:
                continue
        tags.append(tag)
    return tags
