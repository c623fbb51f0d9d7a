"""The Shlink REST API v3's request bodies, in Shlink's names (docs/swagger of shlinkio/shlink).

Only the shapes are checked here; each is turned into encurta's own CreateLink or UpdateLink,
whose rules (target check, code rules, limits) decide, so the Shlink API accepts nothing the
links API refuses. `NAMES` maps encurta's field names back to Shlink's for its errors.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from app.kernel.shlink import invalid_data
from app.modules.shortener.schemas import CreateLink, UpdateLink

NAMES = {
    "url": "longUrl",
    "code": "customSlug",
    "expires_at": "validUntil",
    "valid_from": "validSince",
    "max_visits": "maxVisits",
    "forward_query": "forwardQuery",
    "title": "title",
    "tags": "tags",
}
_NO_DOMAINS = "encurta has one domain: leave domain out (or null)."
_NO_DEVICES = "Not supported: use encurta's redirect rules (the links API) for per-device URLs."
_NO_CRAWLABLE = "Not supported: encurta's robots.txt allows no short URL."


class _Edition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    tags: list[str] | None = None
    validSince: AwareDatetime | None = None
    validUntil: AwareDatetime | None = None
    maxVisits: int | None = None
    forwardQuery: bool | None = None
    crawlable: bool | None = None
    deviceLongUrls: dict[str, Any] | None = None

    def refused(self) -> dict[str, str]:
        """What Shlink has and encurta does not, when asked for."""
        reasons = {}
        if self.crawlable:
            reasons["crawlable"] = _NO_CRAWLABLE
        if self.deviceLongUrls and any(self.deviceLongUrls.values()):
            reasons["deviceLongUrls"] = _NO_DEVICES
        return reasons


class ShlinkCreate(_Edition):
    longUrl: str
    customSlug: str | None = None
    findIfExists: bool = False
    domain: str | None = None
    shortCodeLength: int | None = None  # encurta's codes have one configured length

    def to_encurta(self) -> CreateLink:
        reasons = self.refused()
        if self.domain:
            reasons["domain"] = _NO_DOMAINS
        if reasons:
            raise invalid_data(reasons)
        return CreateLink.model_validate(
            {
                "url": self.longUrl,
                "code": self.customSlug or None,
                "title": self.title,
                "tags": self.tags or [],
                "valid_from": self.validSince,
                "expires_at": self.validUntil,
                "max_visits": self.maxVisits,
                # Shlink forwards the query unless told not to.
                "forward_query": True if self.forwardQuery is None else self.forwardQuery,
            }
        )


class ShlinkEdit(_Edition):
    longUrl: str | None = None

    def to_encurta(self) -> UpdateLink:
        reasons = self.refused()
        if reasons:
            raise invalid_data(reasons)
        chosen = {
            "longUrl": "url",
            "title": "title",
            "tags": "tags",
            "validSince": "valid_from",
            "validUntil": "expires_at",
            "maxVisits": "max_visits",
            "forwardQuery": "forward_query",
        }
        return UpdateLink.model_validate(
            {
                ours: getattr(self, theirs)
                for theirs, ours in chosen.items()
                if theirs in self.model_fields_set
            }
        )
