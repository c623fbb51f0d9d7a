"""Settings from `ENCURTA_*` variables, and `masked()`, which must never show a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import SecretStr, ValidationError

from app.config import Settings
from app.registry import NAMES


def private_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def pem_body(pem: str) -> str:
    """The base64 key material between the PEM armour lines."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def test_without_variables_the_defaults_apply() -> None:
    settings = Settings()

    assert settings.modules == list(NAMES)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path("data")
    assert settings.auth.access_token_ttl_seconds == 900
    assert settings.configured_url("auth") is None


def test_top_level_settings_come_from_encurta_prefixed_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENCURTA_PORT", "9001")
    monkeypatch.setenv("ENCURTA_HOST", "192.0.2.10")
    monkeypatch.setenv("ENCURTA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENCURTA_MIGRATE_ON_START", "false")
    monkeypatch.setenv("ENCURTA_LOG_LEVEL", "debug")

    settings = Settings()

    assert (settings.host, settings.port) == ("192.0.2.10", 9001)
    assert settings.data_dir == tmp_path
    assert settings.migrate_on_start is False
    assert settings.log_level == "debug"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9002")
    monkeypatch.setenv("HOST", "192.0.2.10")
    monkeypatch.setenv("MODULES", "auth")

    settings = Settings()

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.modules == list(NAMES)


def test_double_underscore_nests_into_a_module_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCURTA_AUTH__ACCESS_TOKEN_TTL_SECONDS", "600")
    monkeypatch.setenv("ENCURTA_AUTH__DATABASE_URL", "postgresql+asyncpg://u:pw@db/auth")
    monkeypatch.setenv("ENCURTA_TOKENS__ISSUER", "https://id.example")
    monkeypatch.setenv("ENCURTA_EMBEDDED__DURABLE", "false")

    settings = Settings()

    assert settings.auth.access_token_ttl_seconds == 600
    assert settings.auth.refresh_token_ttl_seconds == 30 * 24 * 3600  # the rest kept
    assert settings.configured_url("auth") == "postgresql+asyncpg://u:pw@db/auth"
    assert settings.configured_url("shortener") is None
    assert settings.tokens.issuer == "https://id.example"
    assert settings.embedded.durable is False


def test_double_underscore_nests_two_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCURTA_AUTH__ARGON2__TIME_COST", "2")
    monkeypatch.setenv("ENCURTA_AUTH__THROTTLE__MAX_FAILURES_PER_EMAIL", "9")

    settings = Settings()

    assert settings.auth.argon2.time_cost == 2
    assert settings.auth.argon2.memory_cost_kib == 65536  # its siblings keep their defaults
    assert settings.auth.throttle.max_failures_per_email == 9
    assert settings.auth.access_token_ttl_seconds == 900


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("analytics,auth", ["auth", "analytics"]),
        ("analytics, shortener ,auth", ["auth", "shortener", "analytics"]),
        ("shortener", ["shortener"]),
        ("auth,auth,,", ["auth"]),
    ],
)
def test_modules_are_a_comma_list_kept_in_canonical_order(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("ENCURTA_MODULES", value)

    assert Settings().modules == expected


@pytest.mark.parametrize(
    ("name", "value", "location"),
    [
        ("ENCURTA_PORT", "abc", ("port",)),
        ("ENCURTA_PORT", "0", ("port",)),
        ("ENCURTA_PORT", "70000", ("port",)),
        ("ENCURTA_LOG_LEVEL", "verbose", ("log_level",)),
        ("ENCURTA_MIGRATE_ON_START", "perhaps", ("migrate_on_start",)),
        ("ENCURTA_MODULES", "auth,billing", ("modules", 1)),
        ("ENCURTA_AUTH__ACCESS_TOKEN_TTL_SECONDS", "5", ("auth", "access_token_ttl_seconds")),
        ("ENCURTA_AUTH__ARGON2__TIME_COST", "0", ("auth", "argon2", "time_cost")),
        ("ENCURTA_AUTH__POOL_SIZE", "many", ("auth", "pool_size")),
        ("ENCURTA_EMBEDDED__PORT", "-1", ("embedded", "port")),
        ("ENCURTA_BUS__TRANSPORT", "rabbitmq", ("bus", "transport")),
        ("ENCURTA_TOKENS__LEEWAY_SECONDS", "3600", ("tokens", "leeway_seconds")),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, location: tuple[str | int, ...]
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert [error["loc"] for error in caught.value.errors()] == [location]


# masked()

URLS = {
    "auth": "postgresql+asyncpg://auth_role:Auth-s3cret-pw@db.internal:5432/encurta_auth",
    "shortener": "postgresql+asyncpg://short_role:Short%40s3cret@db.internal/encurta_shortener",
    "analytics": "postgresql+asyncpg://stats_role:Stats-s3cret-pw@stats.internal/encurta_stats",
}
PASSWORDS = ["Auth-s3cret-pw", "Short%40s3cret", "Short@s3cret", "Stats-s3cret-pw"]


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    pem = private_key_pem()
    for module, url in URLS.items():
        monkeypatch.setenv(f"ENCURTA_{module.upper()}__DATABASE_URL", url)
    monkeypatch.setenv("ENCURTA_AUTH__PRIVATE_KEY", pem)
    monkeypatch.setenv("ENCURTA_PORT", "8123")
    return {"pem": pem}


def test_masked_never_shows_a_database_password_or_the_private_key(
    configured: dict[str, str],
) -> None:
    masked = Settings().masked()
    text = "\n".join(f"{k}={v}" for k, v in masked.items())

    for password in PASSWORDS:
        assert password not in text
    assert "PRIVATE KEY" not in text
    assert pem_body(configured["pem"]) not in text
    assert pem_body(configured["pem"])[:16] not in text
    assert masked["ENCURTA_AUTH__PRIVATE_KEY"] == "**********"


def test_masked_never_shows_the_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCURTA_METRICS__TOKEN", "scrape-token-do-not-show")
    masked = Settings().masked()

    assert masked["ENCURTA_METRICS__TOKEN"] == "**********"
    assert "scrape-token-do-not-show" not in "\n".join(map(str, masked.values()))
    monkeypatch.delenv("ENCURTA_METRICS__TOKEN")
    assert Settings().masked()["ENCURTA_METRICS__TOKEN"] is None


def test_masked_still_shows_each_urls_user_host_and_database(configured: dict[str, str]) -> None:
    masked = Settings().masked()

    assert masked["ENCURTA_AUTH__DATABASE_URL"] == (
        "postgresql+asyncpg://auth_role:***@db.internal:5432/encurta_auth"
    )
    assert masked["ENCURTA_SHORTENER__DATABASE_URL"] == (
        "postgresql+asyncpg://short_role:***@db.internal/encurta_shortener"
    )
    assert "stats_role" in masked["ENCURTA_ANALYTICS__DATABASE_URL"]
    assert "stats.internal" in masked["ENCURTA_ANALYTICS__DATABASE_URL"]


def test_masked_shows_every_setting_as_an_encurta_variable(configured: dict[str, str]) -> None:
    masked = Settings().masked()

    assert all(key.startswith("ENCURTA_") for key in masked)
    assert masked["ENCURTA_PORT"] == "8123"
    assert masked["ENCURTA_MODULES"] == ",".join(NAMES)
    assert masked["ENCURTA_AUTH__ARGON2__TIME_COST"] == "3"
    assert masked["ENCURTA_AUTH__ACCESS_TOKEN_TTL_SECONDS"] == "900"
    assert masked["ENCURTA_TOKENS__ISSUER"] == "encurta"


def test_masked_masks_every_secret_value_whatever_its_name() -> None:
    # Every SecretStr the model has, set to a recognisable value.
    secret = "Zq9-every-secret-value"
    settings = Settings(
        auth={"database_url": f"not a url {secret}", "private_key": secret},
        shortener={"database_url": f"also://::not:a:url:{secret}"},
        analytics={"database_url": SecretStr(f"host=db password={secret}")},
    )

    masked = settings.masked()

    assert not [key for key, value in masked.items() if value and secret in value]
    assert masked["ENCURTA_AUTH__DATABASE_URL"] == "**********"


def test_masked_hides_a_password_given_in_the_urls_query_string() -> None:
    # asyncpg takes `?password=` as the connection password, so it is as secret as the
    # password in the authority part.
    url = "postgresql+asyncpg://auth_role@db.internal/encurta_auth?password=Query-s3cret-pw"
    settings = Settings(auth={"database_url": url})

    masked = settings.masked()["ENCURTA_AUTH__DATABASE_URL"]

    assert "Query-s3cret-pw" not in masked
    assert "auth_role@db.internal" in masked


def test_the_access_log_turns_the_express_lane_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn writes that log in its ASGI send, which the lane skips; `encurta config`
    shows the effective value."""
    assert Settings().server.express is True
    monkeypatch.setenv("ENCURTA_ACCESS_LOG", "true")

    settings = Settings()

    assert settings.server.express is False
    assert settings.masked()["ENCURTA_SERVER__EXPRESS"] == "False"
