"""The webhooks API: shapes, validation, owners kept apart, the secret shown once."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.modules.webhooks import WebhooksSettings
from tests.conftest import AppFactory
from tests.modules.webhooks.conftest import add_webhook
from tests.support.accounts import Account, new_account
from tests.support.waiting import eventually


async def test_a_webhook_is_made_listed_and_deleted_and_its_secret_is_shown_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    made = await add_webhook(client, owner, "https://hooks.example.com/in", ["link.created"])

    assert set(made) == {"id", "url", "events", "created_at", "secret"}
    assert made["url"] == "https://hooks.example.com/in"
    assert made["events"] == ["link.created"]
    assert str(made["secret"]).startswith("whsec_") and len(str(made["secret"])) > 40
    listed = await client.get("/api/webhooks", headers=owner.headers)
    assert listed.status_code == 200
    assert listed.json() == {
        "items": [{k: v for k, v in made.items() if k != "secret"}],
    }
    assert "whsec_" not in listed.text
    gone = await client.delete(f"/api/webhooks/{made['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert (await client.get("/api/webhooks", headers=owner.headers)).json() == {"items": []}
    again = await client.delete(f"/api/webhooks/{made['id']}", headers=owner.headers)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/", "events": ["link.created"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["link.created"]}, "url"),
        ({"url": "http://127.0.0.1:9000/", "events": ["link.created"]}, "url"),
        ({"url": "http://169.254.169.254/latest", "events": ["link.created"]}, "url"),
        ({"url": "http://[fd00:ec2::254]/", "events": ["link.created"]}, "url"),
        ({"url": "http://10.1.2.3/", "events": ["link.created"]}, "url"),
        ({"url": "http://localhost:8080/", "events": ["link.created"]}, "url"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": ["link.exploded"]}, "events.0"),
        ({"url": "https://example.com/"}, "events"),
        ({"events": ["link.created"]}, "url"),
    ],
)
async def test_a_bad_webhook_is_refused_naming_the_field(
    app_client: AppFactory, body: dict[str, object], field: str
) -> None:
    async with app_client() as client:  # the defaults: private targets refused
        owner = await new_account(client, "owner@example.com")
        refused = await client.post("/api/webhooks", json=body, headers=owner.headers)
        listed = await client.get("/api/webhooks", headers=owner.headers)

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in refused.json()["errors"]] == [field]
    assert "shorten" not in refused.text and "link " not in refused.text
    assert listed.json() == {"items": []}


async def test_another_accounts_webhooks_are_invisible_to_an_owner(
    client: httpx.AsyncClient, owner: Account
) -> None:
    other = await new_account(client, "other@example.com")
    theirs = await add_webhook(client, other, "https://hooks.example.com/theirs")

    assert (await client.get("/api/webhooks", headers=owner.headers)).json() == {"items": []}
    for method, path in [
        ("DELETE", f"/api/webhooks/{theirs['id']}"),
        ("GET", f"/api/webhooks/{theirs['id']}/deliveries"),
        ("POST", f"/api/webhooks/{theirs['id']}/deliveries/{uuid.uuid4()}/replay"),
        ("GET", "/api/webhooks/not-a-uuid/deliveries"),
    ]:
        answer = await client.request(method, path, headers=owner.headers)
        assert answer.status_code == 404, (method, path, answer.text)
    assert len((await client.get("/api/webhooks", headers=other.headers)).json()["items"]) == 1


async def test_the_api_needs_a_caller(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/webhooks")).status_code == 401
    posted = await client.post(
        "/api/webhooks", json={"url": "https://example.com/", "events": ["link.created"]}
    )
    assert posted.status_code == 401


async def test_an_account_holds_at_most_the_configured_number_of_webhooks(
    app_client: AppFactory,
) -> None:
    async with app_client(webhooks=WebhooksSettings(max_webhooks=2)) as client:
        owner = await new_account(client, "owner@example.com")
        for _ in range(2):
            await add_webhook(client, owner, "https://hooks.example.com/in")
        third = await client.post(
            "/api/webhooks",
            json={"url": "https://hooks.example.com/in", "events": ["link.created"]},
            headers=owner.headers,
        )

    assert third.status_code == 409


async def test_a_key_needs_links_write_to_add_a_webhook(
    client: httpx.AsyncClient, owner: Account
) -> None:
    made = await client.post(
        "/api/keys", json={"name": "read", "scopes": ["links:read"]}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    key = {"X-Api-Key": made.json()["key"]}

    listed = await eventually(
        lambda: client.get("/api/webhooks", headers=key),
        lambda answer: answer.status_code == 200,
        "the webhooks module admits the key",
    )
    assert listed.json() == {"items": []}
    posted = await client.post(
        "/api/webhooks",
        json={"url": "https://example.com/", "events": ["link.created"]},
        headers=key,
    )
    assert posted.status_code == 403


async def test_a_key_needs_the_read_scopes_of_what_its_webhook_is_sent(
    client: httpx.AsyncClient, owner: Account
) -> None:
    """Events carry the links (links:read) and link.clicked what the statistics show
    (stats:read: country, city, referer, user agent): a key that may write links but not
    read them must not get them by webhook."""
    keys = []
    for scopes in (["links:write"], ["links:write", "links:read"]):
        made = await client.post(
            "/api/keys", json={"name": "write", "scopes": scopes}, headers=owner.headers
        )
        assert made.status_code == 201, made.text
        keys.append({"X-Api-Key": made.json()["key"]})
    write_only, key = keys
    await eventually(
        lambda: client.get("/api/webhooks", headers=key),
        lambda answer: answer.status_code == 200,
        "the webhooks module knows the keys",
    )

    blind = await client.post(
        "/api/webhooks",
        json={"url": "https://example.com/", "events": ["link.created"]},
        headers=write_only,
    )

    clicks = await client.post(
        "/api/webhooks",
        json={"url": "https://example.com/", "events": ["link.created", "link.clicked"]},
        headers=key,
    )
    links_only = await client.post(
        "/api/webhooks",
        json={"url": "https://example.com/", "events": ["link.created"]},
        headers=key,
    )

    assert blind.status_code == 403, blind.text
    assert "links:read" in blind.json()["detail"]
    assert clicks.status_code == 403, clicks.text
    assert "stats:read" in clicks.json()["detail"]
    assert links_only.status_code == 201, links_only.text
    listed = await client.get("/api/webhooks", headers=owner.headers)
    assert [hook["events"] for hook in listed.json()["items"]] == [["link.created"]]
