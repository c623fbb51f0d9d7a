"""The registry's names are the modules everywhere a module is named outside the code."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

from app.config import Settings
from app.registry import MODULES, NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_each_registered_module_is_a_package_that_names_itself() -> None:
    packages = {path.parent.name for path in (ROOT / "app" / "modules").glob("*/__init__.py")}

    assert packages == set(NAMES)
    assert [spec.name for spec in MODULES] == list(NAMES)


def test_alembic_ini_has_a_section_per_module_with_its_own_history_and_version_table() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "alembic.ini", encoding="utf-8")

    assert set(parser.sections()) == set(NAMES)
    for name in NAMES:
        assert parser[name]["script_location"] == f"migrations/{name}"
        assert parser[name]["version_table"] == f"{name}_alembic_version"


def test_migrations_has_a_history_per_module_and_nothing_else() -> None:
    histories = {path.parent.name for path in (ROOT / "migrations").glob("*/env.py")}

    assert histories == set(NAMES)


def test_compose_runs_an_app_and_a_database_per_module() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    served = {
        name: service["environment"]["ENCURTA_MODULES"]
        for name, service in services.items()
        if "ENCURTA_MODULES" in (service.get("environment") or {})
    }
    databases = {name.removeprefix("postgres-") for name in services if "postgres-" in name}

    assert served == {name: name for name in NAMES}
    assert databases == set(NAMES)


def test_settings_have_a_section_per_module_of_its_own_model() -> None:
    settings = Settings()

    for spec in MODULES:
        assert type(settings.section(spec)) is spec.settings
    assert settings.modules == list(NAMES)
