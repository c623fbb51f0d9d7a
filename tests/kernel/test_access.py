"""API keys' shape: recognisable, checksummed, and refused before any lookup when not."""

from __future__ import annotations

import string

from app.kernel.access import API_KEY_PREFIX, api_key_hash, is_api_key, new_api_key


def test_a_new_key_is_prefixed_checksummed_and_never_repeats() -> None:
    keys = {new_api_key() for _ in range(200)}

    assert len(keys) == 200
    for key in keys:
        assert key.startswith(API_KEY_PREFIX) and len(key) == 50
        assert set(key[4:]) <= set(string.ascii_letters + string.digits)
        assert is_api_key(key)


def test_a_mistyped_or_forged_key_fails_its_checksum() -> None:
    key = new_api_key()
    body = key[4:]
    swapped = body[1] + body[0] + body[2:] if body[0] != body[1] else body[::-1]
    changed = body[:10] + ("a" if body[10] != "a" else "b") + body[11:]

    assert not is_api_key(API_KEY_PREFIX + swapped)
    assert not is_api_key(API_KEY_PREFIX + changed)
    assert not is_api_key(key[:-1])  # too short
    assert not is_api_key(key + "x")  # too long
    assert not is_api_key("ENC_" + body)  # the prefix is exact
    assert not is_api_key(key.replace(key[20], "-"))


def test_only_the_hash_is_kept_and_it_is_stable() -> None:
    key = new_api_key()

    assert api_key_hash(key) == api_key_hash(key)
    assert len(api_key_hash(key)) == 32
    assert key.encode() not in api_key_hash(key)
