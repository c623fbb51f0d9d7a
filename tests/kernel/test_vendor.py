"""The vendored browser assets are the ones the manifest pins, byte for byte."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vendor_assets", ROOT / "scripts/vendor_assets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_vendored_file_matches_the_manifest() -> None:
    script = _script()
    manifest = json.loads(script.MANIFEST.read_text())
    assert set(manifest) == set(script.PINS)
    assert script.check(manifest) == []


def test_a_changed_file_is_caught(tmp_path: Path) -> None:
    script = _script()
    manifest = json.loads(script.MANIFEST.read_text())
    entry = manifest["htmx.org"]
    first = next(iter(entry["files"]))
    entry["files"][first] = "0" * 64
    assert script.check(manifest) == [f"{first}: its sha256 differs from the manifest's"]
