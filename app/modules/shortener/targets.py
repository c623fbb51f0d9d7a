"""Which link targets the shortener accepts: the rules live in the kernel (app.kernel.targets),
where the webhooks module checks its receivers' URLs with them too."""

from __future__ import annotations

from app.kernel.targets import (
    MAX_LENGTH,
    UnsafeTarget,
    _parse_host,
    _split_port,
    check_target,
    embedded_ipv4,
)

__all__ = [
    "MAX_LENGTH",
    "UnsafeTarget",
    "_parse_host",
    "_split_port",
    "check_target",
    "embedded_ipv4",
]
