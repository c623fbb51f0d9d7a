"""The Ed25519 signing key: given by configuration, or generated once into the data dir."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from app.modules.auth.settings import AuthSettings
from app.wiring import ModuleConfigurationError

log = logging.getLogger(__name__)


class SigningKeyError(ModuleConfigurationError):
    """The configured key is unusable; the message never contains the key."""


def load_signing_key(settings: AuthSettings, data_dir: Path) -> Ed25519PrivateKey:
    if settings.private_key is not None:
        return _parse(settings.private_key.get_secret_value().encode(), "ENCURTA_AUTH__PRIVATE_KEY")
    path = settings.private_key_file or data_dir / "keys" / "auth-ed25519.pem"
    if path.exists():
        return _parse(path.read_bytes(), str(path))
    if settings.private_key_file is not None:
        raise SigningKeyError(f"ENCURTA_AUTH__PRIVATE_KEY_FILE points at {path}, which is missing")
    return _generate(path)


def _parse(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{source} is not a PEM private key without a passphrase") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{source} is not an Ed25519 key")
    return key


def _generate(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _parse(path.read_bytes(), str(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    log.info("generated a new Ed25519 signing key at %s", path)
    return key
