"""The links API's request and response bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.modules.shortener.codes import CUSTOM_CODE, custom_code_problem
from app.modules.shortener.rules import MAX_RULES, RedirectRule

if TYPE_CHECKING:
    from app.modules.shortener.service import Link

MAX_TITLE = 200
MAX_TAGS = 20
MAX_TAG = 50


def _storable(text: str | None) -> str | None:
    """PostgreSQL's text cannot hold NUL: refused, a 422 naming the parameter (a JSON body's
    strings are checked as it is read)."""
    if text is not None and "\x00" in text:
        raise ValueError("NUL characters are not allowed.")
    return text


def _title(title: str | None) -> str | None:
    """Trimmed; a blank title is no title."""
    if title is None:
        return None
    title = title.strip()
    if len(title) > MAX_TITLE:
        raise ValueError(f"A title has at most {MAX_TITLE} characters.")
    return title or None


def _tags(tags: list[str] | None) -> list[str]:
    """Trimmed, each kept once in its first spelling: tags compare case-insensitively."""
    kept: dict[str, str] = {}
    for tag in tags or []:
        tag = tag.strip()
        if not 1 <= len(tag) <= MAX_TAG:
            raise ValueError(f"A tag has 1 to {MAX_TAG} characters (not counting spaces around).")
        kept.setdefault(tag.casefold(), tag)
    if len(kept) > MAX_TAGS:
        raise ValueError(f"A link has at most {MAX_TAGS} tags.")
    return list(kept.values())


def _future(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    try:
        expires_at = expires_at.astimezone(UTC)
    except OverflowError:
        raise ValueError("The expiry is out of range.") from None
    if expires_at <= datetime.now(UTC):
        raise ValueError("The expiry must be in the future.")
    if expires_at.year > 9000:
        raise ValueError("The expiry is out of range.")
    return expires_at


def _in_range(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("The time is out of range.") from None
    if not 1970 <= moment.year <= 9000:
        raise ValueError("The time is out of range.")
    return moment


_TITLE = f"A title of at most {MAX_TITLE} characters."
_TAGS = f"At most {MAX_TAGS} tags of 1 to {MAX_TAG} characters, compared case-insensitively."
_EXPIRES_AT = "When the link starts answering 410 (with a time zone)."
_VALID_FROM = "Until then the link answers 404, like an unknown code (before expires_at)."
_MAX_VISITS = "After this many visits by people (bots use none) the link answers 410."
_FORWARD_QUERY = "Append the query string of each visit to the target (default false)."
MIN_PASSWORD = 4
MAX_PASSWORD = 256
_PASSWORD = (
    f"Write-only, {MIN_PASSWORD} to {MAX_PASSWORD} characters: visitors must give it before "
    "they are redirected. Stored only as an argon2id hash."
)
_RULES = (
    f"At most {MAX_RULES} rules, in order: the first whose `when` matches a visit picks "
    "its `url`; no match, the link's url."
)


class CreateLink(BaseModel):
    url: str = Field(description="http or https, at most 2,048 characters.")
    code: str | None = Field(
        default=None,
        description="A custom code, 3 to 64 [A-Za-z0-9_-], not a reserved path.",
        json_schema_extra={"pattern": f"^{CUSTOM_CODE.pattern}$"},
    )
    expires_at: AwareDatetime | None = Field(default=None, description=_EXPIRES_AT)
    title: str | None = Field(default=None, description=_TITLE)
    tags: list[str] = Field(default_factory=list, description=_TAGS)
    valid_from: AwareDatetime | None = Field(default=None, description=_VALID_FROM)
    forward_query: bool = Field(default=False, description=_FORWARD_QUERY)
    max_visits: int | None = Field(default=None, ge=1, le=2**31 - 1, description=_MAX_VISITS)
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, description=_PASSWORD
    )
    redirect_rules: list[RedirectRule] | None = Field(
        default=None, max_length=MAX_RULES, description=_RULES
    )

    @field_validator("code")
    @classmethod
    def _usable_code(cls, code: str | None) -> str | None:
        if code is not None and (problem := custom_code_problem(code)):
            raise ValueError(problem)
        return code

    _valid_title = field_validator("title")(_title)
    _valid_tags = field_validator("tags")(_tags)
    _valid_expiry = field_validator("expires_at")(_future)
    _valid_start = field_validator("valid_from")(_in_range)


class UpdateLink(BaseModel):
    """Any subset of a link's fields; `null` clears an optional one. The code never changes."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="The new target, checked as on creation.")
    expires_at: AwareDatetime | None = Field(default=None, description=_EXPIRES_AT)
    title: str | None = Field(default=None, description=_TITLE)
    tags: list[str] | None = Field(default=None, description=_TAGS)
    valid_from: AwareDatetime | None = Field(default=None, description=_VALID_FROM)
    forward_query: bool | None = Field(default=None, description=_FORWARD_QUERY)
    max_visits: int | None = Field(default=None, ge=1, le=2**31 - 1, description=_MAX_VISITS)
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, description=_PASSWORD
    )
    redirect_rules: list[RedirectRule] | None = Field(
        default=None, max_length=MAX_RULES, description=_RULES
    )

    @field_validator("url")
    @classmethod
    def _not_null(cls, url: str | None) -> str:
        if url is None:
            raise ValueError("A link always has a target: url cannot be null.")
        return url

    _valid_title = field_validator("title")(_title)
    _valid_tags = field_validator("tags")(_tags)
    _valid_expiry = field_validator("expires_at")(_future)
    _valid_start = field_validator("valid_from")(_in_range)


class LinkOut(BaseModel):
    """A short link."""

    code: str
    short_url: str
    url: str
    created_at: datetime
    expires_at: datetime | None
    title: str | None
    tags: list[str]
    valid_from: datetime | None
    forward_query: bool
    max_visits: int | None
    visits: int = Field(description="People's visits used since the visit limit was set.")
    has_password: bool = Field(description="Visitors must give a password (never shown).")
    redirect_rules: list[RedirectRule]
    click_count: int
    disabled: bool = Field(
        default=False, description="Disabled by an admin: it answers 410; only an admin undoes it."
    )
    disabled_reason: str | None = Field(default=None, description="The admin's reason, if given.")
    imported_clicks: int = Field(
        default=0, description="Clicks the link had in the tool it was imported from (apart)."
    )


def link_out(link: Link, base_url: str) -> LinkOut:
    """The link as the API shows it (not its id or owner), its short URL under `base_url`:
    the one presentation of the links API and of the links export."""
    fields = {name: getattr(link, name) for name in LinkOut.model_fields if hasattr(link, name)}
    return LinkOut(**fields, short_url=f"{base_url}/{link.code}", url=link.target_url)


class LinkPage(BaseModel):
    """One page of the caller's links."""

    items: list[LinkOut]
    page: int
    per_page: int
    total: int


class PageQuery(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000, description="From 1.")
    per_page: int = Field(default=20, ge=1, le=100, description="Links per page.")
    tag: str | None = Field(
        default=None, max_length=MAX_TAG, description="Only links with this tag (any case)."
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="Only links whose code, title or target holds this.",
    )
    sort: Literal["created_at", "-created_at", "click_count", "-click_count"] = Field(
        default="-created_at", description="A field, ascending; with `-`, descending."
    )

    _no_nul = field_validator("tag", "q")(_storable)


class TagOut(BaseModel):
    """One of the caller's tags (in one of its spellings) and how many live links carry it."""

    tag: str
    links: int


class TagList(BaseModel):
    """The caller's tags, the most used first."""

    items: list[TagOut]


class QrQuery(BaseModel):
    format: Literal["svg", "png"] = Field(default="svg", description="The image format.")
    size: int = Field(default=300, ge=50, le=2000, description="About this many pixels wide.")
