"""The analytics module's tables, in its own database (filled by events only)."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
