"""The shortener module's section of the settings (`ENCURTA_SHORTENER__...`)."""

from __future__ import annotations

from app.kernel.settings import DatabaseSettings


class ShortenerSettings(DatabaseSettings):
    pass
