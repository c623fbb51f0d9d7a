"""A link's short URL as a QR code (segno), as SVG or PNG."""

from __future__ import annotations

import io
from typing import Literal

import segno

MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
_BORDER = 4  # the quiet zone the standard asks for, in modules


def qr_code(url: str, image: Literal["svg", "png"], size: int) -> bytes:
    """The code of `url`, at most `size` pixels wide (whole pixels per module, so a little
    less; at least one pixel per module), with error correction raised as far as it fits
    the smallest symbol."""
    code = segno.make(url, error="m", boost_error=True, micro=False)
    width, _ = code.symbol_size(border=_BORDER)
    out = io.BytesIO()
    code.save(out, kind=image, scale=max(1, size // width), border=_BORDER)
    return out.getvalue()
