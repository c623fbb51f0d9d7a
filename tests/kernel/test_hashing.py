"""The kernel's bounded password-hashing pool, as any module uses it (auth's own behaviour
under load is in tests/modules/auth/test_hash_queue.py)."""

from __future__ import annotations

import pytest

from app.kernel.hashing import HashInFlight, Passwords
from app.kernel.settings import Argon2Settings

FAST = Argon2Settings(time_cost=1, memory_cost_kib=64, parallelism=1)


async def test_a_hash_is_argon2id_and_verifies_only_its_password() -> None:
    passwords = Passwords(FAST, unknown_users=False)
    try:
        with passwords.slot("a") as slot:
            hashed = await passwords.hash("open sesame", slot=slot)
        assert hashed.startswith("$argon2id$")
        with passwords.slot("a") as slot:
            assert (await passwords.verify("open sesame", hashed, slot=slot))[0] is True
        with passwords.slot("a") as slot:
            assert (await passwords.verify("open sesame!", hashed, slot=slot))[0] is False
        assert passwords.in_flight() == 0
    finally:
        await passwords.close()


async def test_one_client_holds_one_slot_at_a_time() -> None:
    passwords = Passwords(FAST, unknown_users=False)
    try:
        with passwords.slot("a"):
            with pytest.raises(HashInFlight):
                passwords.slot("a")
            with passwords.slot("b"):
                assert passwords.in_flight() == 2
        assert passwords.in_flight() == 0
    finally:
        await passwords.close()


async def test_a_pool_without_unknown_users_has_nothing_to_verify_them_against() -> None:
    passwords = Passwords(FAST, unknown_users=False)
    try:
        with passwords.slot("a") as slot, pytest.raises(ValueError):
            await passwords.verify("x", None, slot=slot)
    finally:
        await passwords.close()
