"""A burst larger than the thread pool never deadlocks the API on its connection pool.

Before: a request took its connection at its first query (the rate limiter's key lookup) and
kept it until its commit, across several trips to the thread pool. A burst of more requests
than threads (40) filled every thread with requests waiting for a connection while the ones
holding the connections waited for a thread: nothing moved until the pool timeout (30 s)
failed them. Real ``atelier serve`` on PostgreSQL with a pool of 2 connections; with the old
dependency this burst was not answered within 20 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.concurrency.live import Live, live_server
from tests.conftest import REDIS_URL
from tests.fixtures_browser import run_async

BURST = 120  # three times anyio's default 40 threads
ANSWER_S = 20.0  # the deadlock held every request for the 30 s pool timeout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, make_pg_database) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("pool"), make_pg_database(),
                     REDIS_URL.rsplit("/", 1)[0] + "/9", db_pool_size="2", db_max_overflow="0",
                     rate_limit_per_key="off", rate_limit_per_org="off") as srv:
        yield srv


async def _burst(base: str, paths: list[str], auth: dict[str, str]) -> list[int]:
    """Open every connection first, then send every request at once: a burst, not a trickle
    (threads opening clients one by one spread the requests out and hide the deadlock)."""
    host, port = base.removeprefix("http://").split(":")
    conns = [await asyncio.open_connection(host, int(port)) for _ in paths]
    header = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    for (_, writer), path in zip(conns, paths, strict=True):
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{header}"
                     "Connection: close\r\n\r\n".encode())

    async def status(reader: asyncio.StreamReader) -> int:
        try:
            line = await asyncio.wait_for(reader.readline(), ANSWER_S)
        except TimeoutError:
            return 0
        return int(line.split()[1]) if line else -1

    try:
        return list(await asyncio.gather(*(status(reader) for reader, _ in conns)))
    finally:
        for _, writer in conns:
            writer.close()


def test_a_burst_past_the_thread_pool_is_answered(live: Live) -> None:
    org = live.org(keys=1)
    paths = [("/v1/jobs", "/v1/datasets", "/v1/models")[i % 3] for i in range(BURST)]
    started = time.monotonic()
    statuses = run_async(lambda: _burst(live.base, paths, org.auth()))
    assert statuses == [200] * BURST, (
        f"{statuses.count(0)} of {BURST} unanswered within {ANSWER_S} s, "
        f"other statuses {sorted(set(statuses) - {0, 200})}")
    assert time.monotonic() - started < ANSWER_S


async def _stalled_uploads(base: str, dataset_id: str, auth: dict[str, str], count: int,
                           ) -> list[asyncio.StreamWriter]:
    """Multipart uploads whose body stops after its first bytes (a slow or hostile client)."""
    host, port = base.removeprefix("http://").split(":")
    header = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST /v1/datasets/{dataset_id}/items HTTP/1.1\r\nHost: {host}\r\n{header}"
                     "Content-Type: multipart/form-data; boundary=b\r\n"
                     "Content-Length: 100000\r\n\r\n--b\r\n".encode())
        await writer.drain()
        writers.append(writer)
    return writers


def test_stalled_uploads_hold_no_place_at_the_gate(live: Live) -> None:
    """More stalled uploads than the gate has places (2) leave every other request alone: an
    upload waits for its body outside the gate. Before, each held its place all the while."""
    import httpx

    org = live.org(keys=1)
    dataset = httpx.post(f"{live.base}/v1/datasets", json={"name": "slow"}, headers=org.auth())
    assert dataset.status_code == 201, dataset.text

    async def scenario() -> list[int]:
        writers = await _stalled_uploads(live.base, dataset.json()["id"], org.auth(), 4)
        await asyncio.sleep(1.0)  # every upload has passed its checks and waits for its body
        try:
            async with httpx.AsyncClient(base_url=live.base, timeout=5.0) as client:
                answers = [await client.get(path, headers=org.auth())
                           for path in ("/v1/jobs", "/v1/datasets", "/v1/models")]
            return [a.status_code for a in answers]
        finally:
            for writer in writers:
                writer.close()

    assert run_async(scenario) == [200, 200, 200]
