"""The README documents every setting there is, so its configuration table cannot drift."""

from __future__ import annotations

from pathlib import Path

from tests.test_config_environment import LEAVES

README = (Path(__file__).parent.parent / "README.md").read_text()


def _documented(variable: str) -> bool:
    """Named in full, or in a row's short form: `ENCURTA_AUTH__POOL_SIZE`, `__MAX_OVERFLOW`."""
    if f"`{variable}`" in README or f"{variable}=" in README:
        return True
    section, _, last = variable.rpartition("__")
    return any(
        f"`__{last}`" in line and section.rpartition("__")[0] in line
        for line in README.splitlines()
        if section
    )


def test_every_setting_is_in_the_readme() -> None:
    generic = {"DATABASE_URL", "POOL_SIZE", "MAX_OVERFLOW"}  # the `ENCURTA_<MODULE>__` rows
    missing = [
        variable
        for variable, _, _ in LEAVES
        if variable.rpartition("__")[2] not in generic and not _documented(variable)
    ]

    assert missing == []
