"""Transaction-scoped advisory locks that order a link's lifecycle against its clicks.

Two transactions may touch one link at once (two consumers, a replay next to the live
feed). Click batches take a shared lock per code, and deletions an exclusive one, so a
deletion waits for the click batches in flight and the batches after it see its
tombstone: no click of a deleted link survives in a rollup. The same goes for owners:
user_deleted holds an owner exclusively while link_created holds it shared. Keys are
taken in sorted order, so two batches never wait on each other in a cycle.

A key is a hash of the code (or owner) folded into one of 64 slots: PostgreSQL's lock
table is small (64 locks per connection by default), and a batch may touch thousands of
links. Two links sharing a slot only means a deletion waits for a few more click batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# Two-key advisory locks: the first key is a namespace, so ours cannot collide with others'.
_CODE_SPACE = 0x616E0001
_OWNER_SPACE = 0x616E0002
_KEYS = """
    FROM (
        SELECT DISTINCT hashtext(value) & 63 AS key
        FROM unnest(CAST(:values AS text[])) AS value ORDER BY key
    ) AS keys
"""
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:space, key)" + _KEYS)
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:space, key)" + _KEYS)


async def _lock(conn: AsyncConnection, space: int, values: list[str], exclusive: bool) -> None:
    if values:
        await conn.execute(_EXCLUSIVE if exclusive else _SHARED, {"space": space, "values": values})


async def lock_codes(conn: AsyncConnection, codes: Iterable[str], *, exclusive: bool) -> None:
    await _lock(conn, _CODE_SPACE, sorted(set(codes)), exclusive)


async def lock_owners(conn: AsyncConnection, owners: Iterable[UUID], *, exclusive: bool) -> None:
    await _lock(conn, _OWNER_SPACE, sorted({str(owner) for owner in owners}), exclusive)
