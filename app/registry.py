"""The table of modules: the one place that names them.

The settings (a section per module), the composition root, the CLI and the default of
`ENCURTA_MODULES` derive from this tuple; the import contracts name no module at all.
Adding a module is its package under `app/modules/` (exposing `MODULE`, a `ModuleSpec`),
its migrations, and its name here. The order is the start order.
"""

from __future__ import annotations

import importlib
from typing import Any

from app.kernel.settings import DatabaseSettings
from app.wiring import ModuleSpec

NAMES: tuple[str, ...] = ("auth", "shortener", "analytics", "webhooks")


def _load(name: str) -> ModuleSpec[Any]:
    spec = getattr(importlib.import_module(f"app.modules.{name}"), "MODULE", None)
    if not isinstance(spec, ModuleSpec) or spec.name != name:
        raise TypeError(f"app.modules.{name} must expose MODULE = ModuleSpec(name={name!r}, ...)")
    if not issubclass(spec.settings, DatabaseSettings):
        raise TypeError(f"app.modules.{name}'s settings must extend DatabaseSettings")
    return spec


MODULES: tuple[ModuleSpec[Any], ...] = tuple(_load(name) for name in NAMES)
