"""The composition root: which modules a process runs, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.bus.settings import KafkaSettings
from app.config import Settings
from app.main import ConfigurationError, create_app


def split_settings(settings: Settings, tmp_path: Path, modules: list[str]) -> Settings:
    public_key = tmp_path / "auth-public.pem"
    public_key.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return settings.model_copy(
        update={
            "modules": modules,
            "bus": settings.bus.model_copy(update={"transport": "kafka"}),
            "tokens": settings.tokens.model_copy(update={"public_key_file": public_key}),
        }
    )


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        (
            ["analytics"],
            [("POST", "/api/auth/login"), ("POST", "/api/links"), ("GET", "/some-code")],
        ),
        (
            ["shortener"],
            [
                ("POST", "/api/auth/register"),
                ("GET", "/api/stats/abc"),
                ("GET", "/.well-known/jwks.json"),
            ],
        ),
        (["auth"], [("GET", "/api/links"), ("GET", "/some-code"), ("GET", "/api/stats/abc")]),
    ],
)
async def test_a_process_answers_404_on_the_routes_of_modules_it_does_not_run(
    settings: Settings,
    database_urls: dict[str, str],
    tmp_path: Path,
    modules: list[str],
    absent: list[tuple[str, str]],
) -> None:
    # Routing needs no broker: the app is not started, only asked.
    app = create_app(split_settings(settings, tmp_path, modules), database_urls)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://encurta.test") as client:
        for method, path in absent:
            response = await client.request(method, path, json={})
            assert response.status_code == 404, (method, path, response.text)


def test_without_auth_a_process_needs_auths_public_key(
    settings: Settings, database_urls: dict[str, str], tmp_path: Path
) -> None:
    keyless = split_settings(settings, tmp_path, ["shortener"])
    keyless = keyless.model_copy(
        update={"tokens": keyless.tokens.model_copy(update={"public_key_file": None})}
    )

    with pytest.raises(ConfigurationError, match="ENCURTA_TOKENS__PUBLIC_KEY_FILE"):
        create_app(keyless, database_urls)


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"acks": "1"}, "ENCURTA_BUS__KAFKA__ACKS"),
        ({"enable_auto_commit": True}, "ENCURTA_BUS__KAFKA__ENABLE_AUTO_COMMIT"),
    ],
)
def test_an_unsafe_kafka_setting_refuses_to_start_naming_it(
    settings: Settings, database_urls: dict[str, str], change: dict[str, object], variable: str
) -> None:
    unsafe = settings.model_copy(
        update={
            "bus": settings.bus.model_copy(
                update={"transport": "kafka", "kafka": KafkaSettings(**change)}  # type: ignore[arg-type]
            )
        }
    )

    with pytest.raises(ConfigurationError, match=variable):
        create_app(unsafe, database_urls)
