"""The one key an email is known by: the same at registration, login and deletion.

An address is stored as it was given (after email-validator's own normalisation: NFC local
part, lower-case Unicode domain), and looked up by its key: Unicode NFKC, then case folding
(then NFKC again, so the key of a key is itself). `ÄNNE@example.com`, `änne@example.com`
and a decomposed `a\u0308nne@example.com` are one account; so are `ﬁnn@` and `finn@`.
Folding the local part's case is what every mail provider does in practice.
"""

from __future__ import annotations

import contextlib
import unicodedata

from email_validator import EmailNotValidError, validate_email


def fold(text: str) -> str:
    """NFKC, case folding, NFKC: what migrations/auth/versions/0002 applies to stored rows."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def email_key(address: str) -> str:
    """The lookup key of an address, valid or not (a login may send anything)."""
    address = address.strip()
    # What registration stored went through this too: the domain in Unicode form, so
    # `xn--bcher-kva.de` and `BÜCHER.de` give one key.
    with contextlib.suppress(EmailNotValidError):
        address = validate_email(address, check_deliverability=False).normalized
    return fold(address)
