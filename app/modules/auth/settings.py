"""The auth module's section of the settings (`ENCURTA_AUTH__...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from app.kernel.settings import Argon2Settings, DatabaseSettings, TrustedProxies

__all__ = ["Argon2Settings", "AuthLimits", "AuthSettings", "ThrottleSettings"]


class AuthLimits(BaseModel):
    """Rate limits (`ENCURTA_AUTH__LIMITS__...`), kept where `ENCURTA_LIMITS__STORE` says."""

    api_keys_per_user: int = Field(
        default=20, ge=0, description="API keys one user may create in the window; 0 = no limit."
    )
    window_seconds: int = Field(
        default=3600, ge=1, le=7 * 24 * 3600, description="The window of api_keys_per_user."
    )


class ThrottleSettings(BaseModel):
    """Failed password attempts allowed in a sliding window (see throttle.py for the exact
    rule), and registrations per client."""

    max_failures_per_email: int = Field(default=5, ge=1)
    max_failures_per_ip: int = Field(default=30, ge=1)
    window_seconds: int = Field(default=900, ge=1)
    max_registrations_per_ip: int = Field(default=10, ge=1)
    registration_window_seconds: int = Field(default=3600, ge=1)


class AuthSettings(DatabaseSettings):
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    private_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM). Default: generated on first start."
    )
    private_key_file: Path | None = Field(
        default=None, description="Where the Ed25519 private key lives. Default: DATA_DIR/keys."
    )
    argon2: Argon2Settings = Argon2Settings()
    throttle: ThrottleSettings = ThrottleSettings()
    limits: AuthLimits = AuthLimits()
    refresh_token_purge_seconds: int = Field(
        default=3600,
        ge=1,
        description="How often expired refresh tokens and ended sessions are deleted.",
    )
    trusted_proxies: TrustedProxies = Field(
        default_factory=list,
        description="Peers whose X-Forwarded-For is believed (the per-client throttles).",
    )
    registration: Literal["open", "invite", "closed"] = Field(
        default="open",
        description="Who may create an account with POST /api/auth/register: anyone "
        "(open), holders of an admin's invite (invite), nobody (closed: admins create "
        "accounts, through the API or `encurta users create`).",
    )
