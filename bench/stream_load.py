"""Do open event streams slow anyone else down? Write latency with and without 50 live streams.

A real ``atelier serve`` on PostgreSQL + Redis. Org B watches one running job over N event
streams (spread over a few read-only keys) while the job moves (its progress is bumped and
published twice a second, as a worker would, so every stream reads and sends). Org A runs a
write load meanwhile: dataset creates and caption patches from a few client threads. The same
load runs once without streams; the figures are p50/p95/p99 of the writes and their ratio.

    python bench/stream_load.py [--streams 50] [--writes 300] [--clients 4] [--smoke]

``--smoke``: 3 streams, 20 writes (a unit test runs it so the benchmark cannot rot).
Needs PostgreSQL and Redis (ATELIER_TEST_PG / ATELIER_TEST_REDIS, defaults on localhost).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.concurrency.live import Live, Org, close_all, live_server, open_streams  # noqa: E402
from tests.datasets.helpers import image_bytes  # noqa: E402

PG_ADMIN = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/12"


def _database() -> tuple[str, str]:
    import psycopg

    name = f"atelier_bench_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _writes(live: Live, org: Org, dataset_id: str, item_id: str, n: int, clients: int
            ) -> list[float]:
    """n writes (alternately a dataset create and a caption patch), ms each."""
    def one(i: int, c: httpx.Client) -> float:
        started = time.perf_counter()
        if i % 2:
            r = c.patch(f"/v1/datasets/{dataset_id}/items/{item_id}",
                        json={"caption": f"caption {i}"})
        else:
            r = c.post("/v1/datasets", json={"name": f"load {i}"})
        r.raise_for_status()
        return (time.perf_counter() - started) * 1000

    local = threading.local()

    def run(i: int) -> float:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=live.base, headers=org.auth(), timeout=60)
        return one(i, local.c)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(run, range(n)))


class _JobMover:
    """Bumps the job's progress and publishes the wake-up, as a training worker does."""

    def __init__(self, live: Live, job_id: str) -> None:
        import redis

        self.live, self.job_id = live, job_id
        self.redis = redis.Redis.from_url(REDIS)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            self.live.sql("UPDATE training_jobs SET status = 'running', total_steps = 100000, "
                          "progress_step = progress_step + 1 WHERE id = :id", id=self.job_id)
            self.redis.publish(f"atelier:job:{self.job_id}", b"1")

    def __enter__(self) -> _JobMover:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def _figures(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return q[49], q[94], q[98]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--smoke", action="store_true", help="3 streams, 20 writes")
    args = ap.parse_args()
    if args.smoke:
        args.streams, args.writes = 3, 20
    name, url = _database()
    try:
        with tempfile.TemporaryDirectory(prefix="atelier-bench-") as tmp, live_server(
                Path(tmp), url, REDIS, rate_limit_per_key="off", rate_limit_per_org="off",
                stream_max_per_principal=str(args.streams), stream_max_per_org=str(
                    args.streams + 10)) as live:
            org_a, org_b = live.org(), live.org(keys=0, read_keys=5)
            job = live.queued_job(org_b)
            with httpx.Client(base_url=live.base, headers=org_a.auth(), timeout=60) as c:
                ds = c.post("/v1/datasets", json={"name": "bench"}).json()
                up = c.post(f"/v1/datasets/{ds['id']}/items",
                            files=[("files", ("a.png", image_bytes(), "image/png"))]).json()
            item = up["created"][0]["id"]
            _writes(live, org_a, ds["id"], item, 10, args.clients)  # warm up
            with _JobMover(live, job):
                quiet = _writes(live, org_a, ds["id"], item, args.writes, args.clients)
                streams = open_streams(live.base, job,
                                       [org_b.auth(i % 5) for i in range(args.streams)])
                try:
                    assert all(s.response.status_code == 200 for s in streams)
                    busy = _writes(live, org_a, ds["id"], item, args.writes, args.clients)
                finally:
                    close_all(streams)
    finally:
        _drop(name)
    q, b = _figures(quiet), _figures(busy)
    print(f"stream load: PostgreSQL + Redis, {args.writes} writes (dataset create / caption "
          f"patch) from {args.clients} clients; job progress published every 0.5 s")
    print(f"  {'':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    print(f"  {'without streams':<22}{q[0]:>9.1f}{q[1]:>9.1f}{q[2]:>9.1f}")
    print(f"  {f'with {args.streams} streams':<22}{b[0]:>9.1f}{b[1]:>9.1f}{b[2]:>9.1f}")
    print(f"  {'ratio':<22}{b[0] / q[0]:>9.2f}{b[1] / q[1]:>9.2f}{b[2] / q[2]:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
