"""The web app's shared parts: the layout, the assets, the headers every page carries.

Each module serves the pages of what it owns with a `Pages` of its own templates, which
extend the kernel's `base.html`; the assets (the CSS and the vendored scripts, see
vendor.json and scripts/vendor_assets.py) are served here under `/static/`.
"""

from app.kernel.web.forms import check_query, read_form
from app.kernel.web.pages import (
    PAGE_HEADERS,
    Pages,
    asset_url,
    error_page,
    scope_signed_in,
    scope_wants_html,
    static_routes,
    wants_html,
)
from app.kernel.web.visitor import renew_session, visitor

__all__ = [
    "PAGE_HEADERS",
    "Pages",
    "asset_url",
    "check_query",
    "error_page",
    "read_form",
    "renew_session",
    "scope_signed_in",
    "scope_wants_html",
    "static_routes",
    "visitor",
    "wants_html",
]
