"""Setting blocks every module shares, so each module's own section stays small."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class DatabaseSettings(BaseModel):
    """Where a module's database lives. No URL means: the embedded server provides one."""

    database_url: SecretStr | None = None
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)


class TokenSettings(BaseModel):
    """How any module verifies access tokens: auth's public key alone, never a call to auth."""

    issuer: str = "encurta"
    audience: str = "encurta"
    leeway_seconds: int = Field(default=0, ge=0, le=300)
