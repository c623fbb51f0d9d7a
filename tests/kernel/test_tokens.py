"""TokenVerifier: accepts auth's EdDSA tokens and nothing else. No database, no app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from app.kernel.settings import TokenSettings
from app.kernel.tokens import (
    InvalidToken,
    TokenVerifier,
    key_id,
    public_jwk,
    public_key_from_jwk,
)

SETTINGS = TokenSettings()
USER = uuid.UUID("6f1c0a52-3f1e-4c38-9d5b-2d7c4f3a9e10")


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def verifier(key: Ed25519PrivateKey) -> TokenVerifier:
    return TokenVerifier([key.public_key()], SETTINGS)


def claims(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "sub": str(USER),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": "encurta",
        "aud": "encurta",
        "jti": "token-1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Ed25519PrivateKey, payload: dict[str, Any], kid: str | None = None) -> str:
    headers = {"kid": kid or key_id(key.public_key())}
    return jwt.encode(payload, key, algorithm="EdDSA", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(data: dict[str, Any]) -> str:
    return b64(json.dumps(data, default=lambda d: int(d.timestamp())).encode())


def test_a_token_signed_by_the_key_is_accepted(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    principal = verifier.verify(sign(key, claims(jti="abc")))

    assert principal.user_id == USER
    assert principal.token_id == "abc"


def test_any_of_several_keys_is_accepted(
    key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    verifier = TokenVerifier([key.public_key(), other_key.public_key()], SETTINGS)

    assert verifier.verify(sign(key, claims())).user_id == USER
    assert verifier.verify(sign(other_key, claims())).user_id == USER


def test_a_token_of_an_unknown_kid_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    token = sign(key, claims(), kid="someone-elses-key")

    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(token)


def test_a_token_without_kid_is_refused(verifier: TokenVerifier, key: Ed25519PrivateKey) -> None:
    token = jwt.encode(claims(), key, algorithm="EdDSA")

    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(token)


def test_a_token_signed_by_another_key_is_refused(
    verifier: TokenVerifier, other_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(sign(other_key, claims()))


def test_another_keys_signature_under_our_kid_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    token = sign(other_key, claims(), kid=key_id(key.public_key()))

    with pytest.raises(InvalidToken, match="not valid"):
        verifier.verify(token)


def test_a_tampered_payload_is_refused(verifier: TokenVerifier, key: Ed25519PrivateKey) -> None:
    header, _, signature = sign(key, claims()).split(".")
    forged = segment(claims(sub=str(uuid.uuid4())))

    with pytest.raises(InvalidToken, match="not valid"):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_alg_none_is_refused(verifier: TokenVerifier, key: Ed25519PrivateKey) -> None:
    kid = key_id(key.public_key())
    token = f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}."

    with pytest.raises(InvalidToken, match="EdDSA"):
        verifier.verify(token)


def test_hmac_keyed_with_the_public_key_is_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    # The classic confusion attack: HS256 with the (public) verification key as secret.
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = key_id(key.public_key())
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(InvalidToken, match="EdDSA"):
        verifier.verify(f"{signing_input}.{b64(mac)}")


def test_an_expired_token_is_refused(verifier: TokenVerifier, key: Ed25519PrivateKey) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    token = sign(key, claims(iat=past, exp=past + timedelta(minutes=5)))

    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_leeway_accepts_a_token_just_expired(key: Ed25519PrivateKey) -> None:
    lenient = TokenVerifier([key.public_key()], TokenSettings(leeway_seconds=60))
    token = sign(key, claims(exp=datetime.now(UTC) - timedelta(seconds=10)))

    assert lenient.verify(token).user_id == USER


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "another-service"}, "(?i)audience"),
        ({"iss": "someone-else"}, "(?i)issuer"),
        ({"sub": "not-a-uuid"}, "not valid"),
        ({"sub": "12345"}, "not valid"),
        ({"sub": None}, "sub"),
        ({"jti": None}, "jti"),
        ({"exp": None}, "exp"),
        ({"iat": None}, "iat"),
        ({"aud": None}, "aud"),
        ({"iss": None}, "iss"),
        ({"nbf": datetime.now(UTC) + timedelta(hours=1)}, "not valid"),
    ],
)
def test_tokens_with_wrong_or_missing_claims_are_refused(
    verifier: TokenVerifier, key: Ed25519PrivateKey, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(sign(key, claims(**changes)))


def test_the_audience_and_issuer_come_from_the_settings(key: Ed25519PrivateKey) -> None:
    custom = TokenVerifier([key.public_key()], TokenSettings(issuer="me", audience="you"))

    assert custom.verify(sign(key, claims(iss="me", aud="you"))).user_id == USER
    with pytest.raises(InvalidToken):
        custom.verify(sign(key, claims()))


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "....", "e30.e30.e30"])
def test_malformed_tokens_are_refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_jwks_holds_only_the_public_parts(verifier: TokenVerifier, key: Ed25519PrivateKey) -> None:
    [jwk] = verifier.jwks["keys"]
    raw_private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA" and jwk["use"] == "sig"
    assert jwk["x"] == b64(raw_public)
    assert b64(raw_private) not in json.dumps(verifier.jwks)


def test_the_kid_is_the_rfc_7638_thumbprint(key: Ed25519PrivateKey) -> None:
    jwk = public_jwk(key.public_key())
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"))

    assert jwk["kid"] == b64(hashlib.sha256(canonical.encode()).digest())
    assert key_id(key.public_key()) == jwk["kid"]


def test_jwks_lists_each_key_once(key: Ed25519PrivateKey, other_key: Ed25519PrivateKey) -> None:
    verifier = TokenVerifier([key.public_key(), other_key.public_key(), key.public_key()], SETTINGS)

    kids = [jwk["kid"] for jwk in verifier.jwks["keys"]]
    assert sorted(kids) == sorted({key_id(key.public_key()), key_id(other_key.public_key())})


def test_public_key_from_jwk_round_trips_public_jwk(key: Ed25519PrivateKey) -> None:
    jwk = public_jwk(key.public_key())

    restored = public_key_from_jwk(jwk)

    assert public_jwk(restored) == jwk
    # ...and it verifies what the private key signed.
    restored.verify(key.sign(b"message"), b"message")


def test_a_jwk_from_the_jwks_document_verifies_a_real_token(
    verifier: TokenVerifier, key: Ed25519PrivateKey
) -> None:
    [jwk] = json.loads(json.dumps(verifier.jwks))["keys"]

    restored = TokenVerifier([public_key_from_jwk(jwk)], SETTINGS)

    assert restored.verify(sign(key, claims())).user_id == USER


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "abc", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "x": "abc"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "EC", "crv": "Ed25519", "x": "abc"},
    ],
)
def test_public_key_from_jwk_refuses_other_key_types(jwk: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        public_key_from_jwk(jwk)
