"""Access tokens: accepted when auth signed them, refused otherwise."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from app.config import Settings
from app.kernel.tokens import key_id, public_key_from_jwk
from tests.support.accounts import bearer, login, register
from tests.support.problems import assert_problem


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    key = load_pem_private_key((settings.data_dir / "keys" / "auth-ed25519.pem").read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base = {
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": "encurta",
        "aud": "encurta",
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def forge(key: Ed25519PrivateKey, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": key_id(key.public_key())})


def unsigned(payload: dict[str, Any], kid: str) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(payload)}."


def hs256_by_hand(payload: dict[str, Any], kid: str, secret: bytes) -> str:
    """PyJWT refuses to HMAC with a PEM key; an attacker would not."""
    head = unsigned(payload, kid).split(".")[1]
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        .rstrip(b"=")
        .decode()
    )
    signature = hmac.new(secret, f"{header}.{head}".encode(), hashlib.sha256).digest()
    return f"{header}.{head}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_jwks_publishes_the_public_key_that_verifies_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    token = (await login(client))["access_token"]

    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    [jwk] = response.json()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert "d" not in jwk  # never the private part
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    decoded = jwt.decode(token, public_key_from_jwk(jwk), algorithms=["EdDSA"], audience="encurta")
    assert set(decoded) >= {"sub", "iat", "exp", "iss", "aud", "jti", "role"}
    assert 899 < decoded["exp"] - decoded["iat"] <= 900  # exp whole seconds, iat finer
    assert decoded["role"] == "admin"  # the instance's first account


async def test_a_token_signed_by_auths_key_is_accepted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await register(client)
    token = forge(signing_key(settings), claims(user["id"]))

    response = await client.get("/api/auth/me", headers=bearer(token))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "case",
    ["other key", "alg none", "expired", "wrong audience", "wrong issuer", "tampered", "hs256"],
)
async def test_tokens_we_did_not_sign_as_issued_are_refused(
    client: httpx.AsyncClient, settings: Settings, case: str
) -> None:
    user = await register(client)
    key = signing_key(settings)
    kid = key_id(key.public_key())
    payload = claims(user["id"])
    if case == "other key":
        other = Ed25519PrivateKey.generate()
        token = jwt.encode(payload, other, algorithm="EdDSA", headers={"kid": kid})
    elif case == "alg none":
        token = unsigned(payload, kid)
    elif case == "expired":
        past = datetime.now(UTC) - timedelta(hours=1)
        token = forge(key, claims(user["id"], iat=past, exp=past + timedelta(minutes=15)))
    elif case == "wrong audience":
        token = forge(key, claims(user["id"], aud="someone-else"))
    elif case == "wrong issuer":
        token = forge(key, claims(user["id"], iss="someone-else"))
    elif case == "tampered":
        header, _, signature = forge(key, payload).split(".")
        other_body = (
            base64.urlsafe_b64encode(
                json.dumps(claims(str(uuid.uuid4())), default=lambda d: int(d.timestamp())).encode()
            )
            .rstrip(b"=")
            .decode()
        )
        token = f"{header}.{other_body}.{signature}"
    else:  # an HMAC token keyed with the public key, the classic confusion attack
        public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        token = hs256_by_hand(payload, kid, public_pem)

    response = await client.get("/api/auth/me", headers=bearer(token))

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("missing", ["sub", "exp", "jti", "aud"])
async def test_tokens_missing_a_required_claim_are_refused(
    client: httpx.AsyncClient, settings: Settings, missing: str
) -> None:
    user = await register(client)

    token = forge(signing_key(settings), claims(user["id"], **{missing: None}))

    assert_problem(await client.get("/api/auth/me", headers=bearer(token)), 401)


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Token abc"]
)
async def test_me_without_a_usable_bearer_token_is_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}

    response = await client.get("/api/auth/me", headers=headers)

    assert_problem(response, 401)


async def test_me_for_a_deactivated_account_is_401(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    from tests.modules.auth.test_login import set_active

    await register(client)
    token = (await login(client))["access_token"]
    await set_active(database_urls, False)

    assert_problem(await client.get("/api/auth/me", headers=bearer(token)), 401)


async def test_the_private_key_file_is_readable_by_its_owner_only(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    mode = (settings.data_dir / "keys" / "auth-ed25519.pem").stat().st_mode & 0o777

    assert mode == 0o600
