"""The shape of the clicks bench/stats.py seeds, whichever way it seeds them.

30 days of clicks in time order, a few hundred visitors a day, a mix of user agents,
countries and referers, ~5% bots (from a dozen visitors a day). The consumer path draws
each click here (`click_envelopes`); the SQL path draws from the same lists with the same
weights, in PostgreSQL (bench/support/click_sql.py).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from app.bus.envelope import Envelope
from app.contracts.shortener import LinkClicked

DAYS = 30
VISITORS_PER_DAY = 300
BOTS_PER_DAY = 12
BOT_SHARE = 0.05
BOT_PLACE = ("US", "Mountain View")  # a bot's country and city; bots send no referer
BOT_REASON = "crawler user agent"
IP = "198.51.100.0"  # every click's network
RANDOM = random.Random(20261125)  # the same clicks every run

HUMAN_AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        20,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        18,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Safari/605.1.15",
        10,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 5),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        6,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        4,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        5,
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        2,
    ),
]
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "curl/8.5.0",
]
PLACES = [
    ("PT", ["Lisbon", "Porto", "Braga", "Coimbra"], 25),
    ("BR", ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Recife"], 20),
    ("US", ["New York", "San Francisco", "Austin", "Seattle"], 18),
    ("ES", ["Madrid", "Barcelona"], 8),
    ("FR", ["Paris", "Lyon"], 7),
    ("DE", ["Berlin", "Munich"], 7),
    ("GB", ["London", "Manchester"], 6),
    ("IN", ["Bengaluru", "Mumbai"], 5),
    ("JP", ["Tokyo"], 2),
    ("AO", ["Luanda"], 2),
]
REFERERS = [
    (None, 40),
    ("https://www.google.com/", 18),
    ("https://t.co/abc", 10),
    ("https://news.ycombinator.com/item?id=1", 6),
    ("https://www.linkedin.com/feed/", 6),
    ("https://l.facebook.com/l.php", 6),
    ("https://www.reddit.com/r/python/", 5),
    ("android-app://com.slack", 3),
    ("https://duckduckgo.com/", 3),
    ("https://github.com/", 3),
]


def pick(options: list[tuple[Any, int]]) -> Any:
    return RANDOM.choices(
        [value for value, _ in options], weights=[weight for _, weight in options]
    )[0]


def click_envelope(
    code: str,
    at: datetime,
    *,
    country: str | None,
    city: str | None,
    user_agent: str | None,
    referer: str | None,
    visitor_hash: str,
    is_bot: bool,
    bot_reason: str | None,
    ip_anonymized: str | None = IP,
) -> Envelope:
    """A click as the relay delivers it to analytics."""
    event_id = uuid.uuid4()
    return Envelope(
        event_id=event_id,
        type=LinkClicked.type,
        occurred_at=at,
        key=code,
        payload={
            "event_id": str(event_id),
            "occurred_at": at.isoformat(),
            "code": code,
            "click_id": str(uuid.uuid4()),
            "ip_anonymized": ip_anonymized,
            "country": country,
            "city": city,
            "user_agent": user_agent,
            "referer": referer,
            "visitor_hash": visitor_hash,
            "is_bot": is_bot,
            "bot_reason": bot_reason,
            "metadata": {},
        },
    )


def click_envelopes(code: str, total: int, start: datetime) -> Iterator[Envelope]:
    """Clicks in time order over DAYS days from `start`, as the relay would deliver them:
    click n at a random instant of the n-th of `total` equal slices of that span."""
    span = timedelta(days=DAYS).total_seconds()
    for n in range(total):
        at = start + timedelta(seconds=span * (n + RANDOM.random()) / total)
        day = at.date().isoformat()
        is_bot = RANDOM.random() < BOT_SHARE
        if is_bot:
            agent = RANDOM.choice(BOT_AGENTS)
            visitor = f"{day}-bot-{RANDOM.randrange(BOTS_PER_DAY)}"
            (country, city), referer = BOT_PLACE, None
        else:
            agent = pick(HUMAN_AGENTS)
            visitor = f"{day}-{RANDOM.randrange(VISITORS_PER_DAY)}"
            country, cities, _ = PLACES[
                RANDOM.choices(range(len(PLACES)), [w for _, _, w in PLACES])[0]
            ]
            city, referer = RANDOM.choice(cities), pick(REFERERS)
        yield click_envelope(
            code,
            at,
            country=country,
            city=city,
            user_agent=agent,
            referer=referer,
            visitor_hash=visitor,
            is_bot=is_bot,
            bot_reason=BOT_REASON if is_bot else None,
        )
