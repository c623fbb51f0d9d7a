"""An account deleted in auth (DELETE /api/auth/me) stops its links in the shortener, through
auth's outbox, the bus and the shortener's inbox; the shortener announces each link it stops."""

from __future__ import annotations

import httpx

from tests.conftest import relay_of
from tests.modules.shortener.helpers import DELETED, ShortenerDb, follow, stop_background_relays
from tests.support.accounts import PASSWORD, Account, new_account, shorten
from tests.support.problems import assert_problem


async def delete_account(
    client: httpx.AsyncClient, account: Account | None, password: str = PASSWORD
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.request(
        "DELETE", "/api/auth/me", json={"password": password}, headers=headers
    )


async def deliver_everything(client: httpx.AsyncClient) -> None:
    """auth's events to the shortener, then the shortener's (link_deleted) onwards."""
    await relay_of(client, "auth").drain()
    await relay_of(client, "shortener").drain()


async def test_a_deleted_accounts_links_answer_410_and_nobody_elses_do(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    await new_account(client, "admin@example.com")  # the instance's admin: ana may go
    ana = await new_account(client)
    bo = await new_account(client, "bo@example.com")
    await stop_background_relays(client)
    for code in ("ana-one", "ana-two", "ana-gone"):
        await shorten(client, ana, f"https://example.com/{code}", code=code)
    await shorten(client, bo, "https://example.com/bo", code="bo-one")
    assert await ShortenerDb(database_urls).url_count() == 4
    assert (await client.delete("/api/links/ana-gone", headers=ana.headers)).status_code == 204
    for code in ("ana-one", "ana-two", "bo-one"):
        await follow(client, code)  # each now in the redirect cache

    assert_problem(await delete_account(client, ana, "not the password"), 403)
    assert_problem(await delete_account(client, None), 401)
    await deliver_everything(client)
    assert (await client.get("/ana-one")).status_code == 302  # a refused deletion changes nothing

    response = await delete_account(client, ana)
    assert response.status_code == 204
    await deliver_everything(client)

    for code in ("ana-one", "ana-two", "ana-gone"):
        assert_problem(await client.get(f"/{code}"), 410)
    assert (await client.get("/bo-one")).status_code == 302
    bos = (await client.get("/api/links", headers=bo.headers)).json()
    assert [item["code"] for item in bos["items"]] == ["bo-one"]

    deletions = await ShortenerDb(database_urls).outbox(DELETED)
    assert sorted(row["payload"]["code"] for row in deletions) == ["ana-gone", "ana-one", "ana-two"]
    assert {row["payload"]["owner_id"] for row in deletions} == {str(ana.id)}
    assert all(row["sent_at"] is not None for row in deletions)


async def test_a_deleted_account_can_no_longer_log_in(client: httpx.AsyncClient) -> None:
    ana = await new_account(client)

    assert (await delete_account(client, ana)).status_code == 204

    response = await client.post("/api/auth/login", json={"email": ana.email, "password": PASSWORD})
    assert_problem(response, 401)
    # Already gone: its token is refused by every module's copy of the access list.
    assert_problem(await delete_account(client, ana), 401)


async def test_a_link_made_with_a_deleted_accounts_leftover_token_stops_too(
    client: httpx.AsyncClient,
) -> None:
    """Access tokens are verified with auth's public key alone, so one issued before the
    deletion still verifies for its remaining minutes. A link it creates after the
    `user_deleted` event was handled is still that user's link: it must not redirect."""
    ana = await new_account(client)
    await stop_background_relays(client)
    await shorten(client, ana, code="before")
    assert (await delete_account(client, ana)).status_code == 204
    await deliver_everything(client)

    response = await client.post(
        "/api/links",
        json={"url": "https://example.com/after", "code": "after"},
        headers=ana.headers,
    )
    await deliver_everything(client)

    assert_problem(await client.get("/before"), 410)
    if response.status_code == 201:
        assert_problem(await client.get("/after"), 410)
    else:
        assert response.status_code in (401, 403), response.text
