"""Unit tests of what a click says beyond its event: device class and referer host."""

from __future__ import annotations

import sys

import pytest

from app.modules.analytics.enrichment import (
    MAX_VALUE_LENGTH,
    WHITESPACE,
    clip,
    describe_agent,
    device_class,
    referer_host,
)
from tests.modules.analytics.helpers import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    GOOGLEBOT,
    SAFARI_IPAD,
    SAFARI_IPHONE,
)

ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
CHROMEBOOK = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SMART_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) "
    "Version/6.0 TV Safari/538.1"
)


@pytest.mark.parametrize(
    ("user_agent", "browser", "os", "device"),
    [
        (CHROME_WINDOWS, "Chrome", "Windows", "desktop"),
        (MAC_SAFARI, "Safari", "Mac OS X", "desktop"),
        (FIREFOX_LINUX, "Firefox", "Linux", "desktop"),
        (CHROMEBOOK, "Chrome", "Chrome OS", "desktop"),
        (SAFARI_IPHONE, "Mobile Safari", "iOS", "mobile"),
        (ANDROID_PHONE, "Chrome Mobile", "Android", "mobile"),
        (SAFARI_IPAD, "Mobile Safari", "iOS", "tablet"),
        (ANDROID_TABLET, "Chrome", "Android", "tablet"),
        (GOOGLEBOT, "Googlebot", "unknown", "bot"),
        (SMART_TV, "Safari", "Tizen", "other"),
        ("curl/8.5.0", "curl", "unknown", "other"),
        ("", "unknown", "unknown", "other"),
    ],
)
def test_user_agents_are_described_by_family_and_device_class(
    user_agent: str, browser: str, os: str, device: str
) -> None:
    agent = describe_agent(user_agent)

    assert (agent.browser, agent.os, agent.device) == (browser, os, device)


def test_the_shortener_bot_verdict_makes_the_device_a_bot() -> None:
    agent = describe_agent(CHROME_WINDOWS)

    assert device_class(agent, is_bot=True) == "bot"
    assert device_class(agent, is_bot=False) == "desktop"


@pytest.mark.parametrize(
    ("referer", "host"),
    [
        (None, "direct"),
        ("", "direct"),
        ("   ", "direct"),
        ("https://www.Google.COM/search?q=x", "www.google.com"),
        ("http://news.ycombinator.com:8080/item?id=1", "news.ycombinator.com"),
        ("https://example.org./", "example.org"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("not a url", "unknown"),
        ("https://[::1/", "unknown"),
    ],
)
def test_referers_are_reduced_to_their_host(referer: str | None, host: str) -> None:
    assert referer_host(referer) == host


def test_dimension_values_are_clipped_and_absent_ones_read_unknown() -> None:
    assert clip(None) == clip("  ") == "unknown"
    assert clip(" Lisbon ") == "Lisbon"
    assert len(clip("x" * 1000)) == MAX_VALUE_LENGTH


def test_clip_strips_what_str_strip_strips_and_names_it_for_the_rollups_sql() -> None:
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(WHITESPACE) == spaces
    assert clip("\u3000\x85 Lisbon\xa0\u2028") == "Lisbon"
