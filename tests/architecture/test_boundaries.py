"""The boundary contracts in importlinter.ini hold on the real tree, and each one bites.

"Bites" is shown on a copy of the `app` package in tmp_path: one forbidden import is planted
in the copy, lint-imports runs there, and it must fail naming the contract that guards that
boundary and the planted import. The real tree is never touched.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "importlinter.ini"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> dict[str, configparser.SectionProxy]:
    """The contracts in importlinter.ini, by id (`[importlinter:contract:<id>]`)."""
    parser = configparser.ConfigParser()
    parser.read(CONFIG, encoding="utf-8")
    prefix = "importlinter:contract:"
    return {
        section.removeprefix(prefix): parser[section]
        for section in parser.sections()
        if section.startswith(prefix)
    }


def contract_name(contract_id: str) -> str:
    return contracts()[contract_id]["name"]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed lint-imports on the `app` package found in `cwd`.

    lint-imports puts its working directory first on sys.path, and PYTHONPATH points there
    too, so a copy in tmp_path shadows the editable install of the real tree.
    """
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "1000", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [str(LINT_IMPORTS), "importlinter.ini", "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def broken_contracts(output: str) -> set[str]:
    return {
        line.removesuffix(" BROKEN") for line in output.splitlines() if line.endswith(" BROKEN")
    }


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Contracts: {len(contracts())} kept, 0 broken." in output, output


def test_the_contracts_name_no_module_so_a_new_module_is_covered_as_it_lands() -> None:
    """Wildcards over `app.modules.*` only: a new module's package is independent and its
    submodules private without a new contract."""
    modules = sorted(path.parent.name for path in (ROOT / "app" / "modules").glob("*/__init__.py"))
    text = CONFIG.read_text(encoding="utf-8")

    assert modules, "no module found under app/modules"
    for module in modules:
        assert f"app.modules.{module}" not in text, module
    protected = [c for c in contracts().values() if c["type"] == "protected"]
    assert [c["protected_modules"].split() for c in protected] == [["app.modules.*.*"]]


@dataclass(frozen=True)
class Plant:
    """One forbidden import (or a new file) planted in the copy, and what must catch it."""

    file: str
    line: str
    broken: frozenset[str]  # the contract ids that must report it, and no others
    shown: str  # the illegal import as lint-imports prints it


PLANTS = {
    "a module imports another module": Plant(
        "app/modules/shortener/__init__.py",
        "import app.modules.analytics",
        frozenset({"modules-independent"}),
        "app.modules.shortener -> app.modules.analytics",
    ),
    "a module imports another module's private submodule": Plant(
        "app/modules/analytics/tables.py",
        "from app.modules.auth.tables import users",
        # modules-private lets any module's code in; modules-independent keeps them apart.
        frozenset({"modules-independent"}),
        "app.modules.analytics.tables -> app.modules.auth.tables",
    ),
    "kernel imports a module": Plant(
        "app/kernel/tokens.py",
        "import app.modules.auth",
        # Every module imports the kernel, so this also links the modules to one another.
        frozenset({"layers", "shared-code-knows-no-module", "modules-independent"}),
        "app.kernel.tokens -> app.modules.auth",
    ),
    "kernel imports config, which knows the modules": Plant(
        "app/kernel/settings.py",
        "import app.config",
        # The registry imports modules by name, so the graph does not see config reach them:
        # the layers contract is what catches this.
        frozenset({"layers"}),
        "app.kernel.settings -> app.config",
    ),
    "bus imports a module": Plant(
        "app/bus/envelope.py",
        "from app.modules import shortener",
        # Every module uses the bus, so this also links the modules to each other.
        frozenset({"layers", "shared-code-knows-no-module", "modules-independent"}),
        "app.bus.envelope -> app.modules.shortener",
    ),
    "contracts imports bus": Plant(
        "app/contracts/base.py",
        "import app.bus",
        frozenset({"layers"}),
        "app.contracts.base -> app.bus",
    ),
    "contracts imports a database library": Plant(
        "app/contracts/base.py",
        "import sqlalchemy",
        frozenset({"contracts-pure"}),
        "app.contracts.base -> sqlalchemy",
    ),
    "main imports auth's private submodule": Plant(
        "app/main.py",
        "from app.modules.auth.service import AuthService",
        frozenset({"modules-private"}),
        "app.main -> app.modules.auth.service",
    ),
    "config imports analytics' settings past its public face": Plant(
        "app/config.py",
        "from app.modules.analytics.settings import AnalyticsSettings",
        frozenset({"modules-private"}),
        "app.config -> app.modules.analytics.settings",
    ),
    "cli imports shortener's tables": Plant(
        "app/cli.py",
        "from app.modules.shortener.tables import metadata",
        frozenset({"modules-private"}),
        "app.cli -> app.modules.shortener.tables",
    ),
    "the module face's layer imports a module": Plant(
        "app/wiring.py",
        "import app.modules.shortener",
        # Every module imports wiring, so this also links the modules to one another.
        frozenset({"layers", "modules-independent"}),
        "app.wiring -> app.modules.shortener",
    ),
    "the registry reaches into a module's internals": Plant(
        "app/registry.py",
        "from app.modules.analytics.tables import metadata",
        frozenset({"modules-private"}),
        "app.registry -> app.modules.analytics.tables",
    ),
    "a new top-level package is not placed in a layer": Plant(
        "app/reports/__init__.py",
        '"""Reports."""',
        frozenset({"layers"}),
        "app.reports",
    ),
}


@pytest.fixture
def copy_of_the_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(CONFIG, tmp_path / "importlinter.ini")
    return tmp_path


def test_the_unchanged_copy_keeps_every_contract(copy_of_the_tree: Path) -> None:
    result = lint_imports(copy_of_the_tree)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("plant", PLANTS.values(), ids=PLANTS.keys())
def test_a_planted_import_breaks_its_contract(copy_of_the_tree: Path, plant: Plant) -> None:
    target = copy_of_the_tree / plant.file
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as file:
        file.write(f"\n{plant.line}\n")

    result = lint_imports(copy_of_the_tree)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert broken_contracts(output) == {contract_name(c) for c in plant.broken}, output
    # The planted import itself is reported, so the copy (not the real tree) was analysed.
    assert plant.shown in output, output
