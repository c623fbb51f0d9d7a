"""Vendors the browser assets from the npm registry at pinned versions, or checks them.

    python scripts/vendor_assets.py           # fetch the pinned versions, rewrite the manifest
    python scripts/vendor_assets.py --check   # verify the files against the manifest (CI, tests)

`npm pack` fetches each tarball through npm's own registry settings and checks its
`integrity` (sha512) against the registry; the files we ship are copied out of it and their
sha256 written to the manifest. Nothing is loaded from another origin at run time: the
pages reference these files under the app's own /static/. To move a version, edit PINS and
run the script; the diff shows the new files and checksums.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "app/kernel/web/vendor.json"

# package -> (exact version, {file in the tarball's package/ folder: destination in the repo})
PINS: dict[str, tuple[str, dict[str, str]]] = {
    # 2.0.x: the registry's `latest` is already a new major with another API.
    "htmx.org": (
        "2.0.11",
        {
            "dist/htmx.min.js": "app/kernel/web/static/vendor/htmx.min.js",
            "LICENSE": "app/kernel/web/static/vendor/htmx.LICENSE",
        },
    ),
    "uplot": (
        "1.6.32",
        {
            "dist/uPlot.iife.min.js": "app/kernel/web/static/vendor/uPlot.iife.min.js",
            "dist/uPlot.min.css": "app/kernel/web/static/vendor/uPlot.min.css",
            "LICENSE": "app/kernel/web/static/vendor/uPlot.LICENSE",
        },
    ),
    # For the browser tests only (injected into pages by Playwright): never served.
    "axe-core": (
        "4.14.1",
        {
            "axe.min.js": "tests/browser/vendor/axe.min.js",
            "LICENSE": "tests/browser/vendor/axe.LICENSE",
        },
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch() -> dict[str, object]:
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, files) in PINS.items():
            out = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            packed = json.loads(out.stdout)[0]
            with tarfile.open(Path(tmp) / packed["filename"]) as tar:
                tar.extractall(Path(tmp) / name, filter="data")
            shipped = {}
            for source, destination in files.items():
                target = ROOT / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(tmp) / name / "package" / source, target)
                shipped[destination] = sha256(target)
            manifest[name] = {
                "version": version,
                "integrity": packed["integrity"],
                "files": shipped,
            }
    return manifest


def check(manifest: dict[str, dict[str, object]]) -> list[str]:
    """What is wrong with the vendored files: none missing, none changed, versions pinned."""
    errors = []
    for name, entry in manifest.items():
        if name not in PINS or PINS[name][0] != entry["version"]:
            errors.append(f"{name}: the manifest's version is not the pinned one")
        files = entry["files"]
        assert isinstance(files, dict)
        for destination, digest in files.items():
            path = ROOT / destination
            if not path.is_file():
                errors.append(f"{destination}: missing")
            elif sha256(path) != digest:
                errors.append(f"{destination}: its sha256 differs from the manifest's")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, fetch nothing")
    args = parser.parse_args()
    if not args.check:
        MANIFEST.parent.mkdir(parents=True, exist_ok=True)
        MANIFEST.write_text(json.dumps(fetch(), indent=2, sort_keys=True) + "\n")
    errors = check(json.loads(MANIFEST.read_text()))
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
