"""Who owns an operator's import: the account named, active; or the only active admin."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.modules.auth import NoOwner, import_owner
from tests.conftest import asyncpg_dsn
from tests.support.accounts import new_account


async def owner(database_urls: dict[str, str], email: str | None) -> object:
    engine = create_async_engine(database_urls["auth"])
    try:
        return await import_owner(engine, email)
    finally:
        await engine.dispose()


async def sql(database_urls: dict[str, str], statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_urls["auth"]))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_named_account_or_the_only_admin(
    client: httpx.AsyncClient, database_urls: dict[str, str]
) -> None:
    with pytest.raises(NoOwner, match="it has none"):
        await owner(database_urls, None)
    admin = await new_account(client, "admin@example.com")
    bob = await new_account(client, "bob@example.com")

    assert await owner(database_urls, None) == admin.id
    assert await owner(database_urls, "BOB@example.com") == bob.id
    with pytest.raises(NoOwner, match="no account has the email eve@"):
        await owner(database_urls, "eve@example.com")

    await sql(database_urls, "UPDATE users SET role = 'admin'")
    with pytest.raises(NoOwner, match="it has several"):
        await owner(database_urls, None)
    await sql(database_urls, "UPDATE users SET is_active = false WHERE email = 'bob@example.com'")
    with pytest.raises(NoOwner, match="is disabled"):
        await owner(database_urls, "bob@example.com")
