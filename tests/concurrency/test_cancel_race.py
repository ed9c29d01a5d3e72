"""A cancel answered 200 means the job ends ``cancelled``; a finish that landed first makes the
cancel a 409 naming the final state. Never a 200 "cancelling" and then ``succeeded``."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.concurrency.limits_support import Server, at_once, server_fixture  # noqa: F401
from tests.conftest import Tenant
from tests.jobs.conftest import job_body, make_dataset
from tests.jobs.flow import wait_for
from tests.processes import celery_worker
from worker.runner.run_job import _claim, _finish

TRIES = 20


def _final(api: httpx.Client, auth: dict[str, str], job_id: str) -> dict[str, Any]:
    return api.get(f"/v1/jobs/{job_id}", headers=auth).json()


def _check(cancel: httpx.Response, final: dict[str, Any], worker_says: str) -> str:
    if cancel.status_code == 200:
        assert final["status"] == "cancelled", (cancel.json(), final)
        assert worker_says == "cancelled"
        return "cancel won"
    assert cancel.status_code == 409, cancel.text
    assert final["status"] == "succeeded" and worker_says == "succeeded", final
    assert "already succeeded" in cancel.json()["detail"]
    return "finish won"


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_cancel_racing_the_workers_finish_is_truthful(
    server: Server, tenant: Tenant, tiny_base_model: str, isolated_queue: None,
) -> None:
    """The API (a real server) cancels while the worker's finish runs, over and over."""
    ds = make_dataset(tenant, 2)
    seen: Counter[str] = Counter()
    rng = random.Random(12)
    with server.client() as api:
        # How long a cancel takes to reach the database: the finish is timed around it so that
        # either side may land first.
        probe = api.post("/v1/jobs", json=job_body(ds, tiny_base_model, caption_prefix="zkw"),
                         headers=tenant.auth).json()["id"]
        t0 = time.perf_counter()
        api.post(f"/v1/jobs/{probe}/cancel", headers=tenant.auth)
        latency = time.perf_counter() - t0
        for i in range(TRIES):
            r = api.post("/v1/jobs", json=job_body(ds, tiny_base_model, caption_prefix="zkw"),
                         headers=tenant.auth)
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            worker = f"race-worker-{i}"
            assert _claim(job_id, worker) is not None
            skew = rng.uniform(0, 2 * latency)

            def cancel(job_id: str = job_id) -> httpx.Response:
                return api.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.auth)

            def finish(job_id: str = job_id, worker: str = worker, skew: float = skew) -> str:
                time.sleep(skew)
                return _finish(job_id, worker, "succeeded", 1.0)

            answer, worker_says = at_once([cancel, finish])
            seen[_check(answer, _final(api, tenant.auth, job_id), worker_says)] += 1
    print(f"cancel vs finish (cancel latency {latency * 1000:.0f} ms):", dict(seen))


@pytest.mark.slow
def test_cancel_near_the_end_of_real_runs_is_truthful(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
    isolated_queue: None, tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """A real worker on the tiny model; each cancel is sent as the run reaches its last steps."""
    ds = make_dataset(tenant, 2)
    seen: Counter[str] = Counter()
    with celery_worker(service_env, log_path=tmp_path / "worker.log"):
        for i in range(3):
            body = job_body(ds, tiny_base_model, caption_prefix="zkw", steps=8, every=4)
            job_id = client.post("/v1/jobs", json=body, headers=tenant.auth).json()["id"]
            near = 6 + i  # steps 6, 7 or 8 of 8
            wait_for(client, tenant, job_id, lambda j, near=near: j["progress"]["step"] >= near
                     or j["status"] == "succeeded", timeout_s=240, poll_s=0.05)
            answer = client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.auth)
            final = wait_for(client, tenant, job_id,
                             lambda j: j["status"] in ("cancelled", "succeeded"), timeout_s=120)
            if answer.status_code == 200:
                assert final["status"] == "cancelled", (answer.json(), final)
                seen["cancel won"] += 1
            else:
                assert answer.status_code == 409 and final["status"] == "succeeded", answer.text
                seen["finish won"] += 1
    print("cancel near the end:", dict(seen))
