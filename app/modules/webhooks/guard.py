"""SSRF at delivery time: the receiver's name is resolved once, every address it resolves
to is checked, and the connection goes to the checked address.

A check at creation sees only the URL; the name may resolve to 127.0.0.1 then or later
(DNS rebinding: a short TTL and a second answer between a check and a connect). So the
check is made where the socket is opened, by an httpcore network backend, and the address
it approved is the one connected to: there is no second lookup to poison. TLS is still
verified against the URL's host name (httpcore passes the origin's host as
`server_hostname`, whatever address the TCP connection went to).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from app.kernel.targets import is_local_address

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(httpx.TransportError):
    """The receiver's host is (or resolves to) an address encurta must not call."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to the first checked one."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int) -> list[_Address]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"cannot resolve the host: {exc}") from exc
            found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        else:
            found = [literal]
        addresses = list(dict.fromkeys(found))
        if not addresses:
            raise httpcore.ConnectError("the host resolves to no address")
        if not self._allow_private and any(is_local_address(a) for a in addresses):
            # ANY: a name with one public and one private answer could be steered to either.
            raise RefusedAddress("the host resolves to a private or local address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not webhook receivers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose every connection goes through GuardedBackend.

    httpx 0.28 takes no network backend, so the pool it builds is replaced with one that
    has the same settings and ours (no proxy: one from the environment would connect on
    our behalf, past the check)."""

    def __init__(self, allow_private: bool, concurrency: int) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # certifi, as httpx itself
            max_connections=concurrency * 2,
            max_keepalive_connections=concurrency,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private),
        )


def guarded_client(allow_private: bool, concurrency: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private, concurrency),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,  # a redirect could lead anywhere, past the check
        trust_env=False,
    )
