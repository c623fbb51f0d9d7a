"""A module's database stopped for a few seconds under load: nothing crashes, and every
click that got a 302 is counted once when it returns (bench/outage.py: the 10 s version).

- The shortener's database: cached links keep redirecting (each 302 after the commit
  timeout, 2 s), their clicks wait in memory and are written when it is back.
- Analytics' database: redirects are unaffected; the events wait and are applied later.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.kernel.embedded import EmbeddedPostgres
from tests.conftest import traversable_tmp, truncate_all
from tests.e2e.outage import CLICKERS, click_through_outage, isolated, own_postgres

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 4.0


@pytest.fixture
def victim_postgres() -> Iterator[EmbeddedPostgres]:
    root = traversable_tmp("encurta-test-outage-")
    with own_postgres(root) as server:
        yield server
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("victim", ["shortener", "analytics"])
async def test_every_302_is_counted_once_after_a_database_outage(
    victim: str,
    database_urls: dict[str, str],
    data_dir: Path,
    victim_postgres: EmbeddedPostgres,
) -> None:
    await truncate_all(database_urls)
    urls = database_urls | {victim: await isolated(victim_postgres, victim)}

    outage = await click_through_outage(victim, victim_postgres, urls, data_dir, OUTAGE_SECONDS)

    assert outage.alive, "encurta exited during the outage"
    assert outage.seconds >= OUTAGE_SECONDS
    assert outage.during >= CLICKERS, "redirects stopped while the database was down"
    assert outage.lost == 0, f"{outage.lost} clicks that got a 302 were never counted"
    assert outage.duplicated == 0, f"{outage.duplicated} clicks counted twice"
    assert outage.phantom == 0
    assert outage.agree, "the shortener's count and analytics' total differ"
    assert outage.counted >= outage.before + outage.during + outage.after
    if victim == "analytics":
        # The redirect path never touches analytics' database: not one request failed.
        assert outage.unanswered == 0
