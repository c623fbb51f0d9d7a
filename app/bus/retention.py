"""The bus's own retention rules, for the tables it places in each module's database.

- `outbox`: rows already sent, once older than ENCURTA_BUS__OUTBOX_RETENTION_SECONDS. An
  unsent row never goes, however old: it is an event still owed.
- `processed_events`: ids whose `ttl_expires_at` has passed (ENCURTA_BUS__INBOX_TTL_SECONDS,
  set when each was recorded): the replay horizon, past which no redelivery is expected.
- `parked_events`: events that failed every attempt wait for a person (`encurta events
  replay`); after ENCURTA_BUS__PARKED_RETENTION_DAYS they are given up.

The relay and the consumer also purge the first two, one batch per period, as they did
before these rules; the rules add `encurta purge` and the batched periodic job.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from app.bus.settings import DeliverySettings
from app.kernel.retention import Retention, days

INBOX_TTL_SETTING = "ENCURTA_BUS__INBOX_TTL_SECONDS"


def replay_horizon(settings: DeliverySettings) -> timedelta:
    """How long an event may still be redelivered: the inbox remembers its id this long."""
    return timedelta(seconds=settings.inbox_ttl_seconds)


def bus_rules(settings: DeliverySettings, tables: Collection[str]) -> list[Retention]:
    """The rules for those of the bus's tables that a module has (`tables`: its names)."""
    rules = [
        Retention(
            what="outbox rows sent",
            table="outbox",
            age_column="sent_at",
            older_than=timedelta(seconds=settings.outbox_retention_seconds),
            setting="ENCURTA_BUS__OUTBOX_RETENTION_SECONDS",
            where="sent_at IS NOT NULL",
        ),
        Retention(
            what="inbox event ids",
            table="processed_events",
            age_column="ttl_expires_at",
            older_than=timedelta(0),
            setting=INBOX_TTL_SETTING,
        ),
        Retention(
            what="parked events",
            table="parked_events",
            age_column="first_failed_at",
            older_than=days(settings.parked_retention_days),
            setting="ENCURTA_BUS__PARKED_RETENTION_DAYS",
        ),
    ]
    return [rule for rule in rules if rule.table in tables]
