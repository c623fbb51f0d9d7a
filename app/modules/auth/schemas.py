"""The auth API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from app.modules.auth.passwords import MAX_LENGTH, MIN_LENGTH, policy_violation


class _Body(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=False, extra="ignore")


class RegisterRequest(_Body):
    email: EmailStr = Field(max_length=320)
    # Stated in the schema, checked by the validator (whose messages say what to change).
    password: str = Field(
        description="8 to 256 characters, not a common password.",
        json_schema_extra={"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH},
    )
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    invite: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="An admin's invite: required when the instance registers by invitation "
        "(ENCURTA_AUTH__REGISTRATION=invite), ignored otherwise.",
    )

    @field_validator("password")
    @classmethod
    def _strong_enough(cls, password: str) -> str:
        return strong_enough(password)


def strong_enough(password: str) -> str:
    """The password, if the policy takes it; else ValueError saying what to change."""
    problem = policy_violation(password)
    if problem:
        raise ValueError(problem)
    return password


class LoginRequest(_Body):
    email: str = Field(min_length=1, max_length=320)
    # Long enough for any password we accept; longer cannot be right and costs a hash.
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=1, max_length=512)


class DeleteAccountRequest(_Body):
    password: str = Field(min_length=1, max_length=MAX_LENGTH, description="Confirms it is you.")


class ChangePasswordRequest(_Body):
    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: str = Field(
        description="8 to 256 characters, not a common password, not the current one.",
        json_schema_extra={"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH},
    )
    refresh_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="One of your live refresh tokens: the session it belongs to goes on "
        "(the token is rotated, as by a refresh). Without it every session ends.",
    )

    @field_validator("new_password")
    @classmethod
    def _strong_enough(cls, password: str) -> str:
        return strong_enough(password)


class User(BaseModel):
    id: UUID
    email: str
    first_name: str | None
    last_name: str | None
    is_active: bool
    role: Literal["admin", "user"] = Field(description="The first account is the admin.")
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class Jwks(BaseModel):
    keys: list[dict[str, str]]
