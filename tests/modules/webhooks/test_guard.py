"""The connection-time check: every address a host resolves to, and the checked address
is the one connected to."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from app.modules.webhooks.guard import GuardedBackend, RefusedAddress, guarded_client
from tests.support.receiver import Receiver


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "169.254.169.254", "fd00:ec2::254", "[::1]", "10.0.0.1", "224.0.0.1",
     "localhost", "::ffff:127.0.0.1"],
)  # fmt: skip
async def test_a_private_or_local_host_is_refused_before_connecting(host: str) -> None:
    with pytest.raises(RefusedAddress):
        await GuardedBackend(allow_private=False).connect_tcp(host, 80)


async def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = GuardedBackend(allow_private=False)

    async def answers(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(0, 0, 0, "", ("93.184.215.14", port)), (0, 0, 0, "", ("127.0.0.1", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", answers)
    with pytest.raises(RefusedAddress):
        await backend.resolve("mixed.example", 443)


async def test_a_public_name_resolves_to_the_addresses_connected_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = GuardedBackend(allow_private=False)

    async def answers(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(0, 0, 0, "", ("93.184.215.14", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", answers)
    assert await backend.resolve("public.example", 443) == [ipaddress.ip_address("93.184.215.14")]


async def test_allowed_private_targets_are_reached_by_the_guarded_client() -> None:
    with Receiver() as receiver:
        async with guarded_client(allow_private=True, concurrency=1, timeout=2) as client:
            answer = await client.post(f"http://localhost:{receiver.port}/hook", content=b"{}")
        async with guarded_client(allow_private=False, concurrency=1, timeout=2) as client:
            with pytest.raises(RefusedAddress):
                await client.post(f"http://localhost:{receiver.port}/hook", content=b"{}")

    assert answer.status_code == 200
    assert len(receiver.snapshot()) == 1


async def test_redirects_are_not_followed() -> None:
    async with guarded_client(allow_private=True, concurrency=1, timeout=2) as client:
        assert client.follow_redirects is False
    assert isinstance(client, httpx.AsyncClient)
