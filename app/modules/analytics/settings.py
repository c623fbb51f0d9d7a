"""The analytics module's section of the settings (`ENCURTA_ANALYTICS__...`)."""

from __future__ import annotations

from app.kernel.settings import DatabaseSettings


class AnalyticsSettings(DatabaseSettings):
    pass
