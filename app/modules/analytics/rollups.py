"""A batch of click events, stored and added to the rollups by PostgreSQL in one statement.

Python does per-batch work only (the consumer shares its process with the redirects, and
PostgreSQL runs on another core): the events cross as one JSON document made by one Rust
call (orjson, over the fields pydantic keeps in each event's `__dict__`: a third of the
time of pydantic's own dump), and what analytics derives from a click (browser, OS and
device from its user agent, the referer's host) is worked out once per distinct user agent
and referer of the batch (enrichment.py) and joined in by PostgreSQL.

`STORE_CLICKS`, step by step:
1. the first click per click id wins (a click redelivered under a new event id counts
   once), and the clicks of tombstoned links are dropped;
2. `clicks` takes each click id once, and only the clicks it takes go on: the table is the
   clicks' inbox, so a redelivered batch adds nothing;
3. `visitors` takes each (link, UTC day, visitor hash) once: the visitors it takes are new;
4. `url_stats` grows per link and UTC hour: a new visitor is unique in the hour of its
   earliest click of the batch (the lowest click id of equal times), as human or bot by
   that click's verdict; `url_dimension_stats` grows per link, UTC day, dimension and
   value (`enrichment.clip`).
Rollup rows are upserted in key order, so concurrent batches lock them in one order. Times
are bucketed in UTC whatever the session's time zone; one without an offset is UTC.
A value PostgreSQL text cannot hold (NUL) fails the whole statement: nothing half counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import orjson
from sqlalchemy import text

from app.contracts.shortener import LinkClicked
from app.modules.analytics import tables
from app.modules.analytics.dimensions import DIMENSIONS
from app.modules.analytics.enrichment import (
    MAX_VALUE_LENGTH,
    UNKNOWN,
    WHITESPACE,
    describe_agent,
    device_class,
    referer_host,
)

_CLICK_COLUMNS = [column.name for column in tables.clicks.c if column.name != "stored_at"]
# What an event gives `clicks`, as json_to_recordset reads it: times as text, to be read
# as UTC below. Only these fields are read: the event id and the metadata cross unread.
_EVENT_COLUMNS = [column for column in tables.clicks.c if column.name in LinkClicked.model_fields]
_JSON_TYPES = {UUID: "uuid", str: "text", bool: "boolean", datetime: "text"}
_EVENT_RECORD = ", ".join(
    f"{column.name} {_JSON_TYPES[column.type.python_type]}" for column in _EVENT_COLUMNS
)
_SOURCES = {
    "occurred_at": """CASE WHEN split_part(b.occurred_at, 'T', 2) ~ '[zZ+-]'
            THEN b.occurred_at::timestamptz
            ELSE b.occurred_at::timestamp AT TIME ZONE 'UTC' END""",
    "referer_host": "r.referer_host",
    "browser": "a.browser",
    "os": "a.os",
    "device": "a.device",
}
_SELECT_CLICK = ",\n        ".join(
    f"{_SOURCES.get(name, f'b.{name}')} AS {name}" for name in _CLICK_COLUMNS
)
_DIMENSION_COLUMNS = ", ".join(sorted({d.column for d in DIMENSIONS}))
_DIMENSION_VALUES = ", ".join(f"('{d.name}', c.{d.column})" for d in DIMENSIONS)


def _clip(value: str) -> str:
    """`enrichment.clip` in SQL: the same characters stripped, as many kept."""
    whitespace = "".join(f"\\u{ord(char):04x}" for char in WHITESPACE)
    return (
        f"coalesce(nullif(left(btrim({value}, E'{whitespace}'), {MAX_VALUE_LENGTH}), ''), "
        f"'{UNKNOWN}')"
    )


# PostgreSQL cannot know how many rows a JSON document holds (it guesses 100, then 1 after
# a filter), and it would join two of these CTEs in a nested loop, quadratic in the batch:
# rows are matched by grouping instead, and the clicks stored come back with what the
# rollups read (RETURNING), not by a join to the batch.
STORE_CLICKS = text(
    f"""
WITH agents AS (
    SELECT * FROM json_to_recordset(CAST(:agents AS json))
        AS a(user_agent text, is_bot boolean, browser text, os text, device text)
), referers AS (
    SELECT * FROM json_to_recordset(CAST(:referers AS json))
        AS r(referer text, referer_host text)
), batch AS (
    SELECT DISTINCT ON (b.click_id)
        {_SELECT_CLICK}
    FROM ROWS FROM (json_to_recordset(CAST(:clicks AS json)) AS ({_EVENT_RECORD}))
        WITH ORDINALITY AS b
    LEFT JOIN agents AS a ON a.user_agent = coalesce(b.user_agent, '') AND a.is_bot = b.is_bot
    LEFT JOIN referers AS r ON r.referer = coalesce(b.referer, '')
    WHERE NOT EXISTS (
        SELECT FROM url_creations AS u WHERE u.code = b.code AND u.deleted_at IS NOT NULL
    )
    ORDER BY b.click_id, b.ordinality
), stored AS (
    INSERT INTO clicks ({", ".join(_CLICK_COLUMNS)})
    SELECT {", ".join(_CLICK_COLUMNS)} FROM batch ORDER BY click_id
    ON CONFLICT (click_id) DO NOTHING
    RETURNING click_id, code, occurred_at, visitor_hash, is_bot, {_DIMENSION_COLUMNS},
        (occurred_at AT TIME ZONE 'UTC')::date AS day,
        date_trunc('hour', occurred_at, 'UTC') AS hour
), firsts AS (
    SELECT DISTINCT ON (code, day, visitor_hash) code, day, visitor_hash, hour, is_bot
    FROM stored
    ORDER BY code, day, visitor_hash, occurred_at, click_id
), new_visitors AS (
    INSERT INTO visitors (code, day, visitor_hash)
    SELECT code, day, visitor_hash FROM firsts ORDER BY code, day, visitor_hash
    ON CONFLICT DO NOTHING
    RETURNING code, day, visitor_hash
), uniques AS (
    SELECT code, max(hour) AS hour, bool_or(is_bot) AS is_bot
    FROM (
        SELECT code, day, visitor_hash, hour, is_bot, false AS new FROM firsts
        UNION ALL
        SELECT code, day, visitor_hash, NULL, NULL, true FROM new_visitors
    ) AS seen
    GROUP BY code, day, visitor_hash
    HAVING bool_or(new)
), hours AS (
    INSERT INTO url_stats AS s (code, hour, total, human, bot, unique_human, unique_bot)
    SELECT code, hour,
           count(*) FILTER (WHERE click),
           count(*) FILTER (WHERE click AND NOT is_bot),
           count(*) FILTER (WHERE click AND is_bot),
           count(*) FILTER (WHERE NOT click AND NOT is_bot),
           count(*) FILTER (WHERE NOT click AND is_bot)
    FROM (
        SELECT code, hour, is_bot, true AS click FROM stored
        UNION ALL
        SELECT code, hour, is_bot, false FROM uniques
    ) AS counted
    GROUP BY code, hour
    ORDER BY code, hour
    ON CONFLICT (code, hour) DO UPDATE SET
        total = s.total + excluded.total,
        human = s.human + excluded.human,
        bot = s.bot + excluded.bot,
        unique_human = s.unique_human + excluded.unique_human,
        unique_bot = s.unique_bot + excluded.unique_bot
), dimension_days AS (
    INSERT INTO url_dimension_stats AS s (code, day, dimension, value, human, bot)
    SELECT code, day, dimension, {_clip("value")}, sum(human), sum(bot)
    FROM (  -- clipped once per distinct value
        SELECT c.code, c.day, d.dimension, d.value, sum(c.human) AS human, sum(c.bot) AS bot
        FROM (  -- each distinct click description once, not each click once per dimension
            SELECT code, day, {_DIMENSION_COLUMNS},
                   count(*) FILTER (WHERE NOT is_bot) AS human,
                   count(*) FILTER (WHERE is_bot) AS bot
            FROM stored
            GROUP BY code, day, {_DIMENSION_COLUMNS}
        ) AS c CROSS JOIN LATERAL (VALUES {_DIMENSION_VALUES}) AS d(dimension, value)
        GROUP BY 1, 2, 3, 4
    ) AS raw
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (code, day, dimension, value) DO UPDATE SET
        human = s.human + excluded.human,
        bot = s.bot + excluded.bot
)
SELECT count(*) FROM stored
"""  # noqa: S608 - names and constants of this module, no input
)


def click_parameters(events: Sequence[LinkClicked]) -> dict[str, str]:
    """`STORE_CLICKS`'s parameters: the events, and what each distinct user agent (with
    its bot verdict) and referer of the batch says."""
    agents = {(event.user_agent or "", event.is_bot) for event in events}
    referers = {event.referer or "" for event in events}
    return {
        "clicks": orjson.dumps([event.__dict__ for event in events]).decode(),
        "agents": json.dumps([_agent_row(user_agent, is_bot) for user_agent, is_bot in agents]),
        "referers": json.dumps(
            [{"referer": referer, "referer_host": referer_host(referer)} for referer in referers]
        ),
    }


def _agent_row(user_agent: str, is_bot: bool) -> dict[str, object]:
    agent = describe_agent(user_agent)
    return {
        "user_agent": user_agent,
        "is_bot": is_bot,
        "browser": agent.browser,
        "os": agent.os,
        "device": device_class(agent, is_bot),
    }
