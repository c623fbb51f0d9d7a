"""`make lint`'s dependency audit: every package uv.lock pins (all extras, with their hashes),
checked by pip-audit against PyPI's vulnerability advisories (the same data as OSV).

Fails on a known vulnerability. It needs PyPI's JSON API: where that cannot be reached
(an offline machine, an index mirror without it) pip-audit skips every package and would
say "No known vulnerabilities found"; this says plainly that nothing was audited instead,
and fails only with AUDIT_STRICT=1 (set it where PyPI is reachable, so an outage of the
audit is not taken for a clean bill).

A vulnerability with no fixed release yet, which does not reach us, goes into IGNORED with
the reason; remove it once a fix is out and pinned (`.venv/bin/uv lock --upgrade-package X`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
# Advisory id -> why it does not apply to encurta. Empty today.
IGNORED: dict[str, str] = {}


def locked_requirements() -> str:
    return subprocess.run(
        [
            str(BIN / "uv"),
            "export",
            "--frozen",
            "--all-extras",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--quiet",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def audit(requirements: Path) -> list[dict[str, object]]:
    ignores = [arg for vuln in IGNORED for arg in ("--ignore-vuln", vuln)]
    result = subprocess.run(
        [
            str(BIN / "pip-audit"),
            "--requirement",
            str(requirements),
            "--disable-pip",  # the lock's hashed pins are the whole set: no resolving
            "--format",
            "json",
            "--progress-spinner",
            "off",
            *ignores,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 1):  # 1: vulnerabilities found
        sys.exit(f"pip-audit failed:\n{result.stderr}")
    dependencies: list[dict[str, object]] = json.loads(result.stdout)["dependencies"]
    return dependencies


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text(locked_requirements())
        dependencies = audit(requirements)
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:  # type: ignore[attr-defined]
            fixes = ", ".join(vuln["fix_versions"]) or "no fixed release yet"
            print(
                f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in: {fixes})",
                file=sys.stderr,
            )
    if vulnerable:
        return 1
    if audited == 0:
        print(
            f"pip-audit: NOTHING AUDITED: PyPI's vulnerability data could not be reached for "
            f"any of the {len(dependencies)} locked packages ({skipped[0]['skip_reason']})",
            file=sys.stderr,
        )
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    print(f"pip-audit: {audited} locked packages, no known vulnerability", end="")
    print(f" ({len(skipped)} could not be audited)" if skipped else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
