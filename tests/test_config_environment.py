"""Every setting can be set the way an operator sets it: as text in an `ENCURTA_*` variable.

Settings are read from strings, and some types never match a string (a `Literal` of ints
refuses "302"). Walking every field catches that kind of fault for settings not yet written.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from app.config import Settings


def _leaves(
    model: type[BaseModel], prefix: str, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...], FieldInfo]]:
    for name, field in model.model_fields.items():
        variable = f"{prefix}_{name.upper()}" if not path else f"{prefix}__{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, variable, (*path, name))
        else:
            yield variable, (*path, name), field


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _lookup(settings: BaseModel, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = getattr(value, name)
    return value


LEAVES = list(_leaves(Settings, "ENCURTA"))
WITH_DEFAULTS = [
    (variable, path, default)
    for variable, path, field in LEAVES
    if (default := field.get_default(call_default_factory=True)) is not None
    and not isinstance(default, SecretStr)
]
CHOICES = [
    (variable, path, choice)
    for variable, path, field in LEAVES
    if typing.get_origin(field.annotation) is typing.Literal
    for choice in typing.get_args(field.annotation)
]


def test_the_walk_finds_the_settings_of_every_section() -> None:
    variables = {variable for variable, _, _ in LEAVES}

    assert {
        "ENCURTA_PORT",
        "ENCURTA_SHORTENER__REDIRECT_STATUS",
        "ENCURTA_AUTH__ARGON2__TIME_COST",
        "ENCURTA_BUS__KAFKA__BOOTSTRAP_SERVERS",
    } <= variables
    assert ("ENCURTA_SHORTENER__REDIRECT_STATUS", ("shortener", "redirect_status"), 308) in CHOICES


@pytest.mark.parametrize(("variable", "path", "default"), WITH_DEFAULTS, ids=lambda v: str(v))
def test_every_default_written_as_text_reads_back(
    monkeypatch: pytest.MonkeyPatch, variable: str, path: tuple[str, ...], default: Any
) -> None:
    monkeypatch.setenv(variable, _as_text(default))

    assert _lookup(Settings(), path) == default


@pytest.mark.parametrize(("variable", "path", "choice"), CHOICES, ids=lambda v: str(v))
def test_every_choice_written_as_text_is_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, path: tuple[str, ...], choice: Any
) -> None:
    monkeypatch.setenv(variable, _as_text(choice))

    assert _lookup(Settings(), path) == choice
