"""The bar for the Shlink API: Shlink's own JS SDK (@shlinkio/shlink-js-sdk 3.2.1, pinned in
tests/shlink/package-lock.json, installed by `make test`) works against a real
`encurta serve`, unchanged, given an encurta API key."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import PASSWORD, bearer
from tests.test_serve import Server, data_dir
from tests.test_yourls_client import server, until

pytestmark = pytest.mark.integration
__all__ = ["data_dir", "server"]  # the fixtures, used here by name

SDK_DIR = Path(__file__).parent / "shlink"
SHLINK_ERROR = "https://shlink.io/api/error/"


def api_key(server: Server) -> tuple[str, str]:
    """A user's key with the scopes Shlink's API needs (once the modules admit it), and a
    bearer token of the same user for encurta's own API."""
    account = {"email": "ana@example.com", "password": PASSWORD}
    assert httpx.post(f"{server.url}/api/auth/register", json=account).status_code == 201
    token = httpx.post(f"{server.url}/api/auth/login", json=account).json()["access_token"]
    made = httpx.post(
        f"{server.url}/api/keys",
        json={"name": "shlink", "scopes": ["links:read", "links:write", "stats:read"]},
        headers=bearer(token),
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    for probe in ("/rest/v3/short-urls", "/rest/v3/visits"):
        admitted = until(
            lambda probe=probe: httpx.get(server.url + probe, headers={"X-Api-Key": key}),
            lambda response: response.status_code == 200,
        )
        assert admitted.status_code == 200, admitted.text
    return key, token


def run_sdk(base_url: str, key: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed: `make test` says how to install it"
    assert (SDK_DIR / "node_modules" / "@shlinkio" / "shlink-js-sdk").is_dir(), (
        "run `make tests/shlink/node_modules/.installed` (make test does)"
    )
    done = subprocess.run(
        [node, "sdk_check.mjs", base_url, key],
        cwd=SDK_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_shlinks_js_sdk_works_against_encurta(server: Server) -> None:
    key, token = api_key(server)
    out = run_sdk(server.url, key)

    assert out["health"]["status"] == "pass"
    created = out["created"]
    assert created["shortCode"] == "sdk-guide"
    assert created["shortUrl"] == f"{server.url}/sdk-guide"
    assert created["longUrl"] == "https://example.com/guide"
    assert created["title"] == "The guide" and created["tags"] == ["docs", "sdk"]
    assert created["meta"]["maxVisits"] == 100 and created["meta"]["validUntil"]
    assert created["domain"] is None and created["forwardQuery"] is True
    assert created["visitsSummary"] == {"total": 0, "nonBots": 0, "bots": 0}
    assert out["found"]["shortCode"] == "sdk-guide"  # findIfExists: the same, not a new one
    taken = out["taken"]["rejected"]
    assert taken["type"] == SHLINK_ERROR + "non-unique-slug" and taken["status"] == 400
    assert taken["customSlug"] == "sdk-guide"
    unsafe = out["unsafe"]["rejected"]
    assert unsafe["type"] == SHLINK_ERROR + "invalid-data"
    assert unsafe["invalidElements"] == ["longUrl"]

    first = out["firstPage"]
    assert [item["shortCode"] for item in first["data"]] == [
        min("sdk-guide", out["other"]["shortCode"])
    ]
    assert first["pagination"]["totalItems"] == 2 and first["pagination"]["pagesCount"] == 2
    assert [item["shortCode"] for item in out["searched"]["data"]] == ["sdk-guide"]
    assert [item["shortCode"] for item in out["tagged"]["data"]] == [out["other"]["shortCode"]]
    assert out["allTags"]["data"] == []
    assert out["got"]["title"] == "The guide"
    edited = out["edited"]
    assert edited["title"] == "The new guide" and edited["tags"] == ["docs"]
    assert edited["meta"]["maxVisits"] is None

    assert out["followed"] == {"status": 302, "location": "https://example.com/guide"}
    visits = out["visits"]
    assert visits["pagination"]["totalItems"] == 1
    (visit,) = visits["data"]
    assert visit["referer"] == "https://news.example/" and visit["potentialBot"] is False
    assert "Chrome" in visit["userAgent"] and visit["date"]
    assert out["overview"]["nonOrphanVisits"] == {"total": 1, "nonBots": 1, "bots": 0}
    assert out["orphans"]["data"] == []  # a user's key sees no instance-wide orphans
    assert sorted(out["tags"]["data"]) == ["blog", "docs"]  # "sdk" edited away
    (docs,) = [tag for tag in out["tagsStats"]["data"] if tag["tag"] == "docs"]
    assert docs["shortUrlsCount"] == 1 and docs["visitsSummary"]["total"] == 1
    gone = out["gone"]["rejected"]
    assert gone["type"] == SHLINK_ERROR + "short-url-not-found" and gone["status"] == 404
    missing = out["missingVisits"]["rejected"]
    assert missing["type"] == SHLINK_ERROR + "short-url-not-found"
    assert out["badKey"]["rejected"]["type"] == SHLINK_ERROR + "invalid-api-key"

    # encurta's own API saw the same: the edited link, its click, the deleted one gone.
    mine = httpx.get(f"{server.url}/api/links", headers=bearer(token)).json()["items"]
    assert [link["code"] for link in mine] == ["sdk-guide"]
    assert mine[0]["title"] == "The new guide" and mine[0]["tags"] == ["docs"]
    assert mine[0]["max_visits"] is None and mine[0]["click_count"] == 1
    assert mine[0]["forward_query"] is True
    stats = httpx.get(f"{server.url}/api/stats/sdk-guide", headers=bearer(token)).json()
    assert stats["totals"]["human"] == 1 and stats["totals"]["bot"] == 0
    deleted = httpx.get(
        f"{server.url}/api/links/{out['other']['shortCode']}", headers=bearer(token)
    )
    assert deleted.status_code == 404
