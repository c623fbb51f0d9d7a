"""The shortener module's tables, in its own database."""

from __future__ import annotations

from sqlalchemy import MetaData

from app.bus.outbox import outbox_table

metadata = MetaData()

outbox = outbox_table(metadata)
