"""Links with their link_created events in the outbox, as the API would make them:
analytics counts the clicks of links it has heard of.

`seed` makes the one link every server under test answers. `seed_links` makes many: one
statement makes N rows of `urls` and N outbox rows, each payload the JSON that
`row_of(LinkCreated(...))` would hold (checked on one row after the insert), so the
relay and analytics learn of them as of links made through the API.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from app.bus.outbox import INSERT_ROWS, row_of, rows_document
from app.contracts.shortener import LinkCreated
from bench.bare_app import LINKS
from bench.support.serving import CODE, asyncpg_dsn

PREFIX = "r"  # codes are r0000000, r0000001 ...: valid for ANY_CODE, none reserved
TARGET = "https://example.com/landing/"


async def seed(url: str) -> None:
    """The bench link (`url`: the shortener's database), with its link_created event."""
    link_id = uuid.uuid4()
    created = LinkCreated(
        code=CODE,
        link_id=link_id,
        target_url=LINKS[CODE],
        owner_id=None,
        created_at=datetime.now(UTC),
        expires_at=None,
    )
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO urls (id, code, target_url) VALUES ($1, $2, $3)",
                link_id,
                CODE,
                LINKS[CODE],
            )
            await conn.execute(INSERT_ROWS, rows_document([row_of(created)]), None, None)
    finally:
        await conn.close()


def code_width(count: int) -> int:
    return max(7, len(str(count - 1)))


def code_pattern(count: int) -> str:
    """The C format of code number n (0 to count - 1), for printf and Lua alike."""
    return f"{PREFIX}%0{code_width(count)}d"


# A timestamptz as pydantic writes a UTC datetime: no fraction on a whole second.
_ISO = """(to_char({t} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_trunc('second', {t}) = {t} THEN ''
            ELSE to_char({t} AT TIME ZONE 'UTC', '.US') END || 'Z')"""

_SEED = f"""
WITH made AS (
    INSERT INTO urls (id, code, target_url)
    SELECT gen_random_uuid(), $1 || lpad(n::text, $2, '0'), $3 || n
    FROM generate_series(0, $4 - 1) AS n
    RETURNING id, code, target_url, owner_id, created_at, expires_at
), events AS (
    SELECT gen_random_uuid() AS event_id, now() AS occurred_at, made.* FROM made
)
INSERT INTO outbox (event_id, type, key, payload, occurred_at)
SELECT event_id, $5, code,
       jsonb_build_object(
           'event_id', event_id,
           'occurred_at', {_ISO.format(t="occurred_at")},
           'code', code,
           'link_id', id,
           'target_url', target_url,
           'owner_id', owner_id,
           'created_at', {_ISO.format(t="created_at")},
           'expires_at', CASE WHEN expires_at IS NOT NULL
                              THEN {_ISO.format(t="expires_at")} END,
           'title', NULL,
           'tags', '[]'::jsonb
       ),
       occurred_at
FROM events
"""  # noqa: S608 - made of constants, no input


async def seed_links(dsn: str, count: int) -> None:
    """`count` links with their link_created events, in one transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(_SEED, PREFIX, code_width(count), TARGET, count, LinkCreated.type)
        row = await conn.fetchrow(
            "SELECT key, payload::text AS payload FROM outbox WHERE type = $1 AND key = $2",
            LinkCreated.type,
            code_pattern(count) % (count - 1),
        )
    finally:
        await conn.close()
    if row is None:
        raise SystemExit("the links seeded have no link_created event")
    event = LinkCreated.model_validate_json(row["payload"])
    expected = json.loads(row_of(event))["payload"]
    if json.loads(row["payload"]) != expected or row["key"] != event.partition_key:
        raise SystemExit(f"a seeded event is not as the API writes it: {row['payload']}")


async def unsent(dsn: str) -> int:
    """Outbox rows not yet published (analytics has not applied them)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def clicks_counted(dsn: str, code: str | None = None) -> int:
    """Clicks the shortener counted, of one link or of every link: what was folded into
    `click_counts`, and the tallies not folded yet."""
    conn = await asyncpg.connect(dsn)
    try:
        if code is None:
            count = await conn.fetchval(
                "SELECT (SELECT coalesce(sum(clicks), 0) FROM click_counts) "
                "+ (SELECT coalesce(sum(clicks), 0) FROM click_tallies)"
            )
        else:
            count = await conn.fetchval(
                "SELECT coalesce((SELECT clicks FROM click_counts WHERE code = $1), 0) "
                "+ coalesce((SELECT sum(clicks) FROM click_tallies WHERE code = $1), 0)",
                code,
            )
        return int(count)
    finally:
        await conn.close()
