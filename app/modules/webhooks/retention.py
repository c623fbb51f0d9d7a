"""What the webhooks module forgets, and when (app.kernel.retention).

A delivery row is the queue entry and, once done, its history (`GET
/api/webhooks/{id}/deliveries`). Delivered and parked ones are deleted once older than
ENCURTA_WEBHOOKS__DELIVERY_RETENTION_DAYS: a parked delivery can be replayed until then.
Pending and failed ones (still being retried) are never deleted here. Nothing recognises a
redelivered event by its delivery row (the inbox does), so no replay horizon applies.
"""

from __future__ import annotations

from app.kernel.retention import Retention, days
from app.modules.webhooks.settings import WebhooksSettings


def retention_rules(settings: WebhooksSettings) -> list[Retention]:
    return [
        Retention(
            what="delivered and parked deliveries",
            table="deliveries",
            age_column="created_at",
            older_than=days(settings.delivery_retention_days),
            setting="ENCURTA_WEBHOOKS__DELIVERY_RETENTION_DAYS",
            where="status IN ('delivered', 'parked')",
        ),
    ]
