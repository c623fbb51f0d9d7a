"""The composition root: which modules a process runs, and what it refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.bus.settings import KafkaSettings
from app.config import Settings
from app.kernel.settings import TokenSettings
from app.kernel.tokens import key_id
from app.main import ConfigurationError, create_app
from tests.conftest import AppFactory
from tests.support.accounts import new_account


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


async def test_with_auth_here_its_own_key_is_the_only_one_trusted(
    app_client: AppFactory, tmp_path: Path
) -> None:
    """A public key file or a JWKS left in the settings of a process that runs auth must
    not make another key's tokens good: auth's own key is the one source."""
    foreign = Ed25519PrivateKey.generate()
    key_file = tmp_path / "foreign.pem"
    key_file.write_bytes(
        foreign.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "iss": "encurta",
            "aud": "encurta",
            "jti": "x",
        },
        foreign,
        algorithm="EdDSA",
        headers={"kid": key_id(foreign.public_key())},
    )
    tokens = TokenSettings(public_key_file=key_file, jwks_url="http://127.0.0.1:9/jwks.json")

    async with app_client(tokens=tokens) as client:
        for path in ["/api/links", "/api/auth/me"]:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (path, response.text)
        ana = await new_account(client)
        assert (await client.get("/api/links", headers=ana.headers)).status_code == 200
