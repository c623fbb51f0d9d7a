"""Short codes: generated from `secrets` (not guessable), or chosen by the user."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
CUSTOM_CODE = re.compile(r"[A-Za-z0-9_-]{3,64}")
ANY_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # generated or custom, past or present

# Paths the app serves or may serve; compared case-insensitively.
RESERVED = frozenset(
    {
        "api",
        "healthz",
        "readyz",
        "livez",
        "docs",
        "openapi.json",
        ".well-known",
        "static",
        "metrics",
        "favicon.ico",
        "robots.txt",
        "admin",
        "login",
        "logout",
        "signup",  # the web app's pages (auth serves /login and /signup)
        "register",
        "auth",
        "stats",
        "orphans",  # /api/stats/orphans would hide the statistics of a link so named
        "links",
        "export",  # /api/links/export would hide the API view of a link so named
        "assets",
        "health",
        "status",
    }
)


def generate(length: int) -> str:
    """`length` base62 characters: 8 give 47 bits, far beyond guessing at any rate limit."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def imported_code_problem(code: str) -> str | None:
    """A code another shortener already gave out keeps working here if it can: YOURLS's
    first links are `1`, `2`, `a`, shorter than a code chosen here may be."""
    if not ANY_CODE.fullmatch(code):
        return "Use 1 to 64 letters, digits, '-' or '_'."
    if code.lower() in RESERVED:
        return "This code is reserved."
    return None


def custom_code_problem(code: str) -> str | None:
    if not CUSTOM_CODE.fullmatch(code):
        return "Use 3 to 64 letters, digits, '-' or '_'."
    if code.lower() in RESERVED:
        return "This code is reserved."
    return None
