"""A burst larger than the thread pool never deadlocks the API on its connection pool.

Before: a request took its connection at its first query (the rate limiter's key lookup) and
kept it until its commit, across several trips to the thread pool. A burst of more requests
than threads (40) filled every thread with requests waiting for a connection while the ones
holding the connections waited for a thread: nothing moved until the pool timeout (30 s)
failed them. A 200 requests/s load test answered none of 12,000 requests within 10 s.
Real ``atelier serve`` on PostgreSQL with a pool of 2 connections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.concurrency.live import Live, live_server
from tests.conftest import REDIS_URL

BURST = 120  # three times anyio's default 40 threads
ANSWER_S = 20.0  # the deadlock held every request for the 30 s pool timeout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, make_pg_database) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("pool"), make_pg_database(),
                     REDIS_URL.rsplit("/", 1)[0] + "/9", db_pool_size="2", db_max_overflow="0",
                     rate_limit_per_key="off", rate_limit_per_org="off") as srv:
        yield srv


def test_a_burst_past_the_thread_pool_is_answered(live: Live, tmp_path: Path) -> None:
    org = live.org(keys=1)

    def get(path: str) -> tuple[int, float]:
        started = time.monotonic()
        with httpx.Client(base_url=live.base, timeout=ANSWER_S) as client:
            try:
                status = client.get(path, headers=org.auth()).status_code
            except httpx.TimeoutException:
                status = 0
        return status, time.monotonic() - started

    paths = [("/v1/jobs", "/v1/datasets", "/v1/models")[i % 3] for i in range(BURST)]
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        answers = list(pool.map(get, paths))
    statuses = [status for status, _ in answers]
    assert statuses == [200] * BURST, (
        f"{statuses.count(0)} of {BURST} unanswered within {ANSWER_S} s, "
        f"other statuses {sorted(set(statuses) - {0, 200})}")
    assert max(seconds for _, seconds in answers) < ANSWER_S
