"""All settings, from `ENCURTA_*` variables (`__` nests): one section per module, one per bus.

`ENCURTA_AUTH__DATABASE_URL=...` sets `settings.auth.database_url`. Each module owns its
section's model, and the registry says which modules there are; this file only puts them
together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.bus.settings import DeliverySettings, KafkaSettings
from app.kernel.database import redact
from app.kernel.limits import LimitSettings
from app.kernel.metrics import MetricsSettings
from app.kernel.server import ServerSettings
from app.kernel.settings import DatabaseSettings, TokenSettings
from app.registry import MODULES, NAMES
from app.wiring import ModuleSpec, S

if TYPE_CHECKING:
    ModuleName = str
else:
    # A Literal of the registry's names: an unknown one is refused at its index in the list.
    ModuleName = Literal[NAMES]


class EmbeddedSettings(BaseModel):
    """The embedded PostgreSQL, used for every module without a database URL."""

    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port at start.")
    durable: bool = Field(default=True, description="fsync on; tests turn it off.")


class BusSettings(DeliverySettings):
    transport: Literal["inprocess", "kafka"] = "inprocess"
    kafka: KafkaSettings = KafkaSettings()


class CoreSettings(BaseSettings):
    """The settings of the process; `Settings` adds a section per registered module."""

    model_config = SettingsConfigDict(
        env_prefix="ENCURTA_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default=Path("data"), description="Keys and the embedded server.")
    modules: Annotated[list[ModuleName], NoDecode] = Field(default=list(NAMES), min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    migrate_on_start: bool = True
    access_log: bool = Field(
        default=False, description="uvicorn's line per request; costs ~15% on redirects."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    retention_interval_seconds: float = Field(
        default=3600, gt=0, description="How often each module's retention rules run."
    )
    log_format: Literal["console", "json"] = Field(
        default="console", description="json: one JSON object a line (app/kernel/logs.py)."
    )

    tokens: TokenSettings = TokenSettings()
    bus: BusSettings = BusSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    metrics: MetricsSettings = MetricsSettings()

    @field_validator("modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            # Keep the registry's order, whatever order the operator wrote.
            return [name for name in NAMES if name in value] + [
                name for name in value if name not in NAMES
            ]
        return value

    @model_validator(mode="after")
    def _no_express_lane_with_the_access_log(self) -> CoreSettings:
        # uvicorn writes the access log line in its ASGI send, which the lane skips: the
        # effective value (`encurta config`) says the lane is off then.
        if self.access_log and self.server.express:
            self.server = self.server.model_copy(update={"express": False})
        return self

    def section(self, spec: ModuleSpec[S]) -> S:
        """The module's own settings section (`ENCURTA_<MODULE>__...`), of its own model."""
        section = getattr(self, spec.name)
        if not isinstance(section, spec.settings):
            raise TypeError(f"settings.{spec.name} is not a {spec.settings.__name__}")
        return section

    def database(self, module: str) -> DatabaseSettings:
        """What every section has: where the module's database is."""
        section = getattr(self, module)
        if not isinstance(section, DatabaseSettings):
            raise KeyError(f"no module named {module!r}")
        return section

    def configured_url(self, module: str) -> str | None:
        url = self.database(module).database_url
        return url.get_secret_value() if url else None

    def masked(self) -> dict[str, str | None]:
        """Every effective setting by its variable name, secrets masked, URLs without
        passwords; None for a setting that is unset."""
        return dict(_flatten("ENCURTA", self))


if TYPE_CHECKING:
    Settings = CoreSettings
else:
    # One field per registered module, named after it, holding that module's own model.
    Settings = create_model(
        "Settings",
        __base__=CoreSettings,
        __module__=__name__,
        **{spec.name: (spec.settings, spec.settings()) for spec in MODULES},
    )


def _flatten(prefix: str, model: BaseModel) -> list[tuple[str, str | None]]:
    lines: list[tuple[str, str | None]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}_{name.upper()}" if prefix == "ENCURTA" else f"{prefix}__{name.upper()}"
        if isinstance(value, BaseModel):
            lines += _flatten(key, value)
        elif isinstance(value, SecretStr):
            lines.append((key, _mask(name, value)))
        elif value is None:
            lines.append((key, None))
        elif isinstance(value, list):
            lines.append((key, ",".join(str(item) for item in value)))
        else:
            lines.append((key, str(value)))
    return lines


def _mask(name: str, secret: SecretStr) -> str:
    if name.endswith("url"):
        try:
            return redact(secret.get_secret_value())
        except Exception:  # noqa: BLE001 - a malformed URL is still a secret
            return "**********"
    return "**********"
