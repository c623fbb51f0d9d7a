"""What analytics forgets, and when (app.kernel.retention).

Raw clicks are kept by default: they are what the click export, the Shlink visit lists and
a recomputation of the rollups read. Statistics never read them (tables.py): `url_stats`
and `url_dimension_stats` are kept for ever, so totals, uniques, series and top lists do not
change when raw clicks go. `visitors` only decides whether a click's visitor is new on its
day; once no click of that day can arrive any more it has done its work.

Both outlive the replay horizon: a click is recognised as already counted by its row in
`clicks` (its id is the key, the inbox does not record it), and a late click's visitor by
its row in `visitors`; forgetting either sooner would count a redelivered click again.
"""

from __future__ import annotations

from app.kernel.retention import Retention, days
from app.modules.analytics.settings import AnalyticsSettings


def retention_rules(settings: AnalyticsSettings) -> list[Retention]:
    return [
        Retention(
            what="raw clicks",
            table="clicks",
            age_column="occurred_at",
            older_than=days(settings.click_retention_days),
            setting="ENCURTA_ANALYTICS__CLICK_RETENTION_DAYS",
            outlives_replay=True,
        ),
        Retention(
            what="visitors (per link and day)",
            table="visitors",
            age_column="day",
            older_than=days(settings.visitor_retention_days),
            setting="ENCURTA_ANALYTICS__VISITOR_RETENTION_DAYS",
            outlives_replay=True,
        ),
    ]
