"""Setting blocks every module shares, so each module's own section stays small."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _cidrs(value: Any) -> Any:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [ipaddress.ip_network(str(item), strict=False) for item in value]
    return value


# Peers whose X-Forwarded-For is believed: comma-separated CIDRs in the environment.
TrustedProxies = Annotated[list[IPNetwork], NoDecode, BeforeValidator(_cidrs)]


def _integer_text(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


# A Literal of ints is matched exactly, so "301" from the environment would never equal 301.
RedirectStatus = Annotated[Literal[301, 302, 307, 308], BeforeValidator(_integer_text)]


class DatabaseSettings(BaseModel):
    """Where a module's database lives. No URL means: the embedded server provides one."""

    database_url: SecretStr | None = None
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)


class TokenSettings(BaseModel):
    """How any module verifies access tokens: auth's public key alone, never a call to auth.

    In a process with the auth module the key comes from auth itself. Elsewhere it comes
    from `public_key_file` (PEM), or from auth's JWKS at `jwks_url`, fetched at start,
    cached, and fetched again when a token names a key it does not know.
    """

    issuer: str = "encurta"
    audience: str = "encurta"
    leeway_seconds: int = Field(default=0, ge=0, le=300)
    public_key_file: Path | None = None
    jwks_url: str | None = None
    jwks_refetch_seconds: float = Field(
        default=30.0, ge=0, description="Fewest seconds between two JWKS fetches."
    )


class Argon2Settings(BaseModel):
    """argon2id cost and the bounds of a module's hashing pool (app.kernel.hashing). Changing
    the cost rehashes each of auth's passwords at its owner's next login."""

    time_cost: int = Field(default=3, ge=1, le=20)
    memory_cost_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    parallelism: int = Field(default=4, ge=1, le=64)
    # One: each hash already runs `parallelism` threads; a second at once bought 25% more
    # hashes and doubled the redirect latency under a burst (bench/hash_pressure.py).
    max_concurrent: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Hashes and verifications that run at once (each in its own thread); "
        "the rest wait their turn, so hashing cannot take every core from the event loop.",
    )
    # 16 waiting hashes of ~150 ms each: a newcomer waits a few seconds at most.
    max_queued: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="Hashes that may wait for a thread; beyond them a request that needs "
        "one (a login, a registration, a link's password) is answered 503 with Retry-After, "
        "without hashing.",
    )
