"""The links API's request and response bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from app.modules.shortener.codes import CUSTOM_CODE, custom_code_problem


class CreateLink(BaseModel):
    url: str = Field(description="http or https, at most 2,048 characters.")
    code: str | None = Field(
        default=None,
        description="A custom code, 3 to 64 [A-Za-z0-9_-], not a reserved path.",
        json_schema_extra={"pattern": f"^{CUSTOM_CODE.pattern}$"},
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the link starts answering 410 (with a time zone)."
    )

    @field_validator("code")
    @classmethod
    def _usable_code(cls, code: str | None) -> str | None:
        if code is not None and (problem := custom_code_problem(code)):
            raise ValueError(problem)
        return code

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, expires_at: datetime | None) -> datetime | None:
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


class LinkOut(BaseModel):
    """A short link."""

    code: str
    short_url: str
    url: str
    created_at: datetime
    expires_at: datetime | None
    click_count: int


class LinkPage(BaseModel):
    """One page of the caller's links, newest first."""

    items: list[LinkOut]
    page: int
    per_page: int
    total: int


class PageQuery(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000, description="1 for the newest links.")
    per_page: int = Field(default=20, ge=1, le=100, description="Links per page.")
