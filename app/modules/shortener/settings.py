"""The shortener module's section of the settings (`ENCURTA_SHORTENER__...`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from app.kernel.settings import (
    Argon2Settings,
    DatabaseSettings,
    IPNetwork,
    RedirectStatus,
    TrustedProxies,
)

__all__ = ["IPNetwork", "ShortenerLimits", "ShortenerSettings"]


class ShortenerLimits(BaseModel):
    """Rate limits (`ENCURTA_SHORTENER__LIMITS__...`), each in the window below; 0 = none.
    Kept where `ENCURTA_LIMITS__STORE` says (app.kernel.limits)."""

    links_per_user: int = Field(
        default=60, ge=0, description="Links one user may create in the window (every way)."
    )
    links_per_client: int = Field(
        default=120, ge=0, description="Links one client address may create in the window."
    )
    unknown_codes_per_client: int = Field(
        default=100,
        ge=0,
        description="Unknown codes one client may ask for in the window; then every "
        "/{code} it asks for is refused (429) until the window ends.",
    )
    window_seconds: int = Field(
        default=60, ge=1, le=24 * 3600, description="The window of the limits above."
    )


class ShortenerSettings(DatabaseSettings):
    public_url: str | None = Field(
        default=None,
        description="Base of short URLs, e.g. https://s.example.com. Default: the request's.",
    )
    allow_anonymous: bool = Field(default=False, description="Create links without a token.")
    redirect_status: RedirectStatus = 302
    allow_private_targets: bool = Field(
        default=False, description="Allow targets on loopback, private or link-local addresses."
    )
    code_length: int = Field(default=8, ge=6, le=32)
    cache_size: int = Field(default=100_000, ge=0, description="Links kept in memory.")
    cache_ttl_seconds: float = Field(
        default=30.0, ge=0, description="Bounds how long another replica's change goes unseen."
    )
    wait_for_commit: bool = Field(
        default=True,
        description="A redirect answers after its click is committed (no click lost on a "
        "crash). False answers first and risks the last few milliseconds of clicks.",
    )
    click_batch_size: int = Field(default=1000, ge=1, le=20_000)
    click_writers: int = Field(
        default=4, ge=1, le=32, description="Click groups being committed at once."
    )
    click_commit_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="While writes fail, how long a redirect waits before it answers anyway "
        "(its click stays queued).",
    )
    click_buffer_limit: int = Field(
        default=100_000, ge=1, description="Clicks held in memory while the database is away."
    )
    trusted_proxies: TrustedProxies = Field(
        default_factory=list,
        description="Peers whose X-Forwarded-For is believed, comma-separated CIDRs.",
    )
    geoip_city_db: Path | None = Field(
        default=None, description="A MaxMind-format .mmdb with cities (GeoLite2-City, DB-IP)."
    )
    visitor_secret: SecretStr | None = Field(
        default=None,
        description="Derives each day's key of visitor hashes (at least 32 characters; every "
        "shortener replica needs the same). Default: generated once into DATA_DIR/keys.",
    )
    # Link passwords: hashed in a pool of the shortener's own (app.kernel.hashing).
    argon2: Argon2Settings = Argon2Settings()
    password_guesses: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Wrong passwords one client may give for one link in the window; then 429.",
    )
    password_guess_window_seconds: int = Field(
        default=900, ge=1, le=7 * 24 * 3600, description="The window of password_guesses."
    )
    limits: ShortenerLimits = ShortenerLimits()
