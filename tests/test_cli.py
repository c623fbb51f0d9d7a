"""The `encurta` console script, run as a real process with a clean environment.

Each run pays for Python's start-up, so one module fixture runs every command of this file
(the first alone, the others in parallel) and the tests read each run's exit code and output.
The runs share a bytecode cache in a temporary folder (PYTHONPYCACHEPREFIX), so only the
first compiles the imports, even where PYTHONDONTWRITEBYTECODE is set; nothing is written
beside the sources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration

ENCURTA = Path(sys.executable).parent / "encurta"
SUBCOMMANDS = [
    "serve",
    "migrate",
    "events",
    "reconcile",
    "config",
    "openapi",
    "modules",
    "users",
    "import",
    "purge",
    "backup",
    "restore",
]
AUTH_PATHS = {
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/refresh",
    "/api/auth/logout",
    "/api/auth/me",
    "/.well-known/jwks.json",
    "/api/admin/users",
    "/api/admin/users/{id}",
    "/api/admin/invites",
    "/api/admin/invites/{id}",
    "/api/auth/password",
    "/api/keys",
    "/api/keys/{id}",
}
HEALTH_PATHS = {"/healthz", "/readyz"}
SHORTENER_PATHS = {
    "/api/links",
    "/api/links/{code}",
    "/api/links/{code}/qr",
    "/api/links/{code}/live",  # a redirect to analytics' stream
    "/api/links/export",
    "/api/tags",
    "/{code}",
    "/api/admin/links",
    "/api/admin/links/{code}",
    "/api/admin/blocked-domains",
    "/api/admin/blocked-domains/{domain}",
    "/api/stats/orphans",
    "/api/imports",
}
ANALYTICS_PATHS = {"/api/stats/{code}", "/api/stats/{code}/live", "/api/stats/{code}/clicks"}
WEBHOOKS_PATHS = {
    "/api/webhooks",
    "/api/webhooks/{id}",
    "/api/webhooks/{id}/deliveries",
    "/api/webhooks/{id}/deliveries/{delivery_id}/replay",
}
DB_PASSWORD = "s3cretpw"
PRIVATE_KEY = (
    Ed25519PrivateKey.generate()
    .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    .decode()
)


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    data_dir: Path

    def __str__(self) -> str:  # what a failed assertion shows
        return f"encurta {' '.join(self.argv)} -> {self.returncode}\n{self.stdout}\n{self.stderr}"


def clean_env(data_dir: Path, pycache: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["ENCURTA_DATA_DIR"] = str(data_dir)
    env.update(settings)
    return env


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, database_urls: dict[str, str]
) -> Iterator[dict[str, Run]]:
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def add(name: str, argv: list[str], **settings: str) -> None:
        commands[name] = (argv, settings)

    add("help", ["--help"])
    for sub in SUBCOMMANDS:
        add(f"help {sub}", [sub, "--help"])
    add(
        "config",
        ["config"],
        ENCURTA_AUTH__DATABASE_URL=f"postgresql+asyncpg://u:{DB_PASSWORD}@db/x",
        ENCURTA_AUTH__PRIVATE_KEY=PRIVATE_KEY,
    )
    add("openapi", ["openapi"])
    add("modules", ["modules"])
    add("openapi without auth", ["openapi"], ENCURTA_MODULES="shortener,analytics")
    # Describing uses none of these: a key file not mounted where the docs are built, a
    # broker library not installed there.
    add(
        "openapi with absent keys",
        ["openapi"],
        ENCURTA_AUTH__PRIVATE_KEY_FILE="/nonexistent/auth.pem",
        ENCURTA_TOKENS__PUBLIC_KEY_FILE="/nonexistent/public.pem",
    )
    add(
        "migrate",
        ["migrate", "auth", "shortener", "analytics"],
        **{f"ENCURTA_{m.upper()}__DATABASE_URL": url for m, url in database_urls.items()},
    )
    add("migrate unknown", ["migrate", "nosuchmodule"])
    add("invalid port", ["config"], ENCURTA_PORT="abc")

    pycache = tmp_path_factory.mktemp("encurta-cli-pycache")
    started: dict[str, tuple[list[str], subprocess.Popen[str], Path]] = {}
    results: dict[str, Run] = {}

    def finish(name: str) -> None:
        argv, process, data_dir = started[name]
        stdout, stderr = process.communicate(timeout=90)
        results[name] = Run(argv, process.returncode, stdout, stderr, data_dir)

    try:
        for index, (name, (argv, settings)) in enumerate(commands.items()):
            data_dir = tmp_path_factory.mktemp("encurta-cli")
            started[name] = (
                argv,
                subprocess.Popen(
                    [str(ENCURTA), *argv],
                    env=clean_env(data_dir, pycache, **settings),
                    cwd=data_dir,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                data_dir,
            )
            if index == 0:
                finish(name)  # fills the bytecode cache for the others
        for name in started:
            if name not in results:
                finish(name)
    finally:
        for _, process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    yield results


def test_the_console_script_is_installed() -> None:
    assert ENCURTA.is_file() and os.access(ENCURTA, os.X_OK)


def test_top_level_help_lists_every_command(runs: dict[str, Run]) -> None:
    run = runs["help"]

    assert run.returncode == 0, run
    assert run.stdout.startswith("usage: encurta")
    assert "URL shortener" in run.stdout
    for sub in SUBCOMMANDS:
        assert sub in run.stdout, sub


@pytest.mark.parametrize(
    ("sub", "describes"),
    [
        ("serve", ["Serve the enabled modules", "--host", "--port"]),
        ("migrate", ["latest migration", "MODULE", "auth, shortener, analytics"]),
        ("config", ["effective setting", "masked"]),
        ("openapi", ["OpenAPI 3.1"]),
        ("modules", ["routes, tables"]),
        ("events", ["parked", "replay"]),
        ("reconcile", ["click_count", "--wait", "1 some differ", "3 nothing to compare"]),
        ("users", ["users create EMAIL [--admin] --password-stdin", "users list", "2 usage"]),
        ("import", ["shlink", "--owner EMAIL", "--dry-run", "Importing again changes nothing"]),
        ("purge", ["--dry-run", "--module", "small batches", "ENCURTA_RETENTION_INTERVAL_SECONDS"]),
        ("backup", ["DIR", "pg_dump", "manifest.json", "holds secrets"]),
        ("restore", ["DIR", "--force", "migrate each module forward", "Stop `encurta serve`"]),
    ],
)
def test_each_command_help_describes_it(
    runs: dict[str, Run], sub: str, describes: list[str]
) -> None:
    run = runs[f"help {sub}"]

    assert run.returncode == 0, run
    assert run.stdout.startswith(f"usage: encurta {sub}"), run
    text = " ".join(run.stdout.split())  # argparse wraps lines
    for words in describes:
        assert words in text, words


def test_help_needs_no_database_and_writes_nothing(runs: dict[str, Run]) -> None:
    for name in ["help", *(f"help {sub}" for sub in SUBCOMMANDS)]:
        assert list(runs[name].data_dir.iterdir()) == [], name


def test_config_prints_the_url_without_its_password_and_no_key_material(
    runs: dict[str, Run],
) -> None:
    run = runs["config"]
    lines = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)

    assert run.returncode == 0, run
    assert lines["ENCURTA_AUTH__DATABASE_URL"] == "postgresql+asyncpg://u:***@db/x"
    assert lines["ENCURTA_AUTH__PRIVATE_KEY"] == "**********"
    output = run.stdout + run.stderr
    assert DB_PASSWORD not in output
    assert "PRIVATE KEY" not in output
    key_material = [line for line in PRIVATE_KEY.splitlines() if not line.startswith("-----")]
    assert key_material and not any(line in output for line in key_material)


def test_config_prints_one_encurta_variable_per_line(runs: dict[str, Run]) -> None:
    run = runs["config"]
    # Unset settings are printed commented out, so the output can be sourced back.
    keys = [line.removeprefix("# ").split("=", 1)[0] for line in run.stdout.splitlines()]

    assert keys and all(key.startswith("ENCURTA_") for key in keys), run
    assert len(keys) == len(set(keys))
    assert {"ENCURTA_PORT", "ENCURTA_MODULES", "ENCURTA_AUTH__ARGON2__TIME_COST"} <= set(keys)


def test_openapi_prints_a_3_1_document_with_the_auth_and_health_paths(
    runs: dict[str, Run],
) -> None:
    run = runs["openapi"]

    assert run.returncode == 0, run
    document = json.loads(run.stdout)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == (
        AUTH_PATHS | HEALTH_PATHS | SHORTENER_PATHS | ANALYTICS_PATHS | WEBHOOKS_PATHS
    )
    assert set(document["paths"]["/api/auth/login"]) == {"post"}
    assert document["paths"]["/api/auth/me"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}]


def test_openapi_without_the_auth_module_has_no_auth_paths(runs: dict[str, Run]) -> None:
    run = runs["openapi without auth"]

    assert run.returncode == 0, run
    document = json.loads(run.stdout)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == HEALTH_PATHS | SHORTENER_PATHS | ANALYTICS_PATHS
    assert not AUTH_PATHS & set(document["paths"])


def test_openapi_needs_no_database_and_writes_no_key(runs: dict[str, Run]) -> None:
    for name in ["openapi", "openapi without auth"]:
        assert list(runs[name].data_dir.iterdir()) == [], runs[name]
        assert "signing key" not in runs[name].stderr, runs[name]


def test_openapi_reads_no_key_at_all(runs: dict[str, Run]) -> None:
    run = runs["openapi with absent keys"]

    assert run.returncode == 0, run
    assert json.loads(run.stdout) == json.loads(runs["openapi"].stdout)


def test_migrate_with_configured_urls_succeeds_without_an_embedded_server(
    runs: dict[str, Run],
) -> None:
    run = runs["migrate"]

    assert run.returncode == 0, run
    assert "migrated: auth, shortener, analytics" in run.stdout
    assert not (run.data_dir / "postgres").exists()
    assert "embedded PostgreSQL" not in run.stderr
    # The log names each database, with its password hidden.
    for module in ["auth", "shortener", "analytics"]:
        assert f"migrating {module}" in run.stderr


def test_migrate_logs_no_database_password(
    runs: dict[str, Run], database_urls: dict[str, str]
) -> None:
    run = runs["migrate"]
    for url in database_urls.values():
        password = make_url(url).password
        assert password and password not in run.stdout + run.stderr


def test_migrate_of_an_unknown_module_fails_naming_it(runs: dict[str, Run]) -> None:
    run = runs["migrate unknown"]

    assert run.returncode != 0, run
    assert "no module named nosuchmodule" in run.stderr
    assert "auth, shortener, analytics" in run.stderr  # ...and what the modules are
    assert "Traceback" not in run.stderr
    assert not (run.data_dir / "postgres").exists()


def test_an_invalid_setting_exits_non_zero_naming_it(runs: dict[str, Run]) -> None:
    run = runs["invalid port"]

    assert run.returncode == 2, run
    assert "invalid settings" in run.stderr
    # Named by its variable; the value is not echoed (a bad value may be a secret).
    assert "ENCURTA_PORT" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_modules_names_the_commands_a_module_adds(runs: dict[str, Run]) -> None:
    run = runs["modules"]

    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[lines.index("auth") + 1].split() == ["command", "encurta", "users"]
    assert ["route", "POST", "/api/admin/invites"] in [line.split() for line in lines]
    assert lines[lines.index("shortener") + 1].split() == ["command", "encurta", "import"]
