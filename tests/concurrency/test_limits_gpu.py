"""Concurrent-job and GPU-time limits on PostgreSQL: workers claiming jobs at the same moment
start no more than the plan allows, and a running job stops at the org's GPU quota."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.db import session_scope
from app.models import JobLogLine, Organization, TrainingJob, WebhookDelivery, WebhookEndpoint
from tests.concurrency.limits_support import at_once
from tests.conftest import Tenant
from tests.jobs.conftest import job_body, make_dataset
from tests.jobs.flow import wait_for
from tests.processes import celery_worker
from worker.runner.run_job import _claim


@pytest.fixture(autouse=True)
def _queue(isolated_queue: None) -> None:
    """Dispatch is global: start with an empty queue, leave one behind."""


def _limits(org_id: str, **values: Any) -> None:
    with session_scope() as db:
        db.execute(update(Organization).where(Organization.id == org_id).values(**values))


def _jobs(client: TestClient, tenant: Tenant, base: str, n: int, **extra: Any) -> list[str]:
    ds = make_dataset(tenant, 2)
    ids = []
    for _ in range(n):
        r = client.post("/v1/jobs", json=job_body(ds, base, caption_prefix="zkw", **extra),
                        headers=tenant.auth)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def _statuses(ids: list[str]) -> dict[str, str]:
    with session_scope() as db:
        return dict(db.execute(select(TrainingJob.id, TrainingJob.status)
                               .where(TrainingJob.id.in_(ids))).all())


def test_concurrent_claims_start_no_more_than_the_concurrency_limit(
    client: TestClient, tenant: Tenant, tiny_base_model: str,
) -> None:
    _limits(tenant.org_id, max_concurrent_jobs=2)
    ids = _jobs(client, tenant, tiny_base_model, 6)
    # Six workers claim six queued jobs at the same moment (the dispatcher's choice is only
    # advisory; the claim is where the limit must hold).
    claims = at_once([lambda i=i, job_id=job_id: _claim(job_id, f"test-worker-{i}")
                      for i, job_id in enumerate(ids)])
    assert not [c for c in claims if isinstance(c, Exception)], claims
    started = [job_id for job_id, c in zip(ids, claims, strict=True) if c is not None]
    statuses = _statuses(ids)
    assert len(started) == 2, statuses
    assert sorted(statuses.values()) == ["queued"] * 4 + ["running"] * 2
    with session_scope() as db:  # the others wait undispatched, with the reason in their log
        waiting = [j for j in ids if j not in started]
        assert all(db.get(TrainingJob, j).dispatched_at is None  # type: ignore[union-attr]
                   for j in waiting)
        lines = db.scalars(select(JobLogLine.message).where(JobLogLine.job_id == waiting[0]))
        assert any("max_concurrent_jobs" in line for line in lines)


def test_gpu_seconds_are_reserved_at_start_and_an_empty_quota_starts_nothing(
    client: TestClient, tenant: Tenant, tiny_base_model: str,
) -> None:
    # 5 GPU seconds left; a 6-step job is expected to take 6 (1 s per step by default).
    _limits(tenant.org_id, max_concurrent_jobs=4, monthly_gpu_seconds_limit=5)
    ids = _jobs(client, tenant, tiny_base_model, 3, steps=6)
    claims = at_once([lambda i=i, job_id=job_id: _claim(job_id, f"test-worker-{i}")
                      for i, job_id in enumerate(ids)])
    started = [job_id for job_id, c in zip(ids, claims, strict=True) if c is not None]
    assert len(started) == 1, _statuses(ids)  # the first reserved all of it; the rest wait
    with session_scope() as db:
        job = db.get(TrainingJob, started[0])
        assert job is not None and job.gpu_seconds_reserved == pytest.approx(6.0)
        # That job used up the month's seconds and ended.
        db.execute(update(TrainingJob).where(TrainingJob.id == job.id)
                   .values(status="succeeded", gpu_seconds=5.0))
        db.add(WebhookEndpoint(org_id=tenant.org_id, url="https://hooks.example/atelier",
                               secret="s", events=["job.failed"]))
    waiting = [j for j in ids if j not in started]
    assert _claim(waiting[0], "test-worker-late") is None
    with session_scope() as db:
        failed = db.get(TrainingJob, waiting[0])
        assert failed is not None and failed.status == "failed"
        assert failed.error and failed.error.startswith("GPU quota reached: 5.0 of 5 GPU seconds")
        # The tenant hears of it as of any other failure.
        sent = db.scalars(select(WebhookDelivery).where(WebhookDelivery.org_id == tenant.org_id))
        assert [(d.event, d.payload["data"]["job_id"]) for d in sent] == [
            ("job.failed", waiting[0])]
    r = client.post("/v1/jobs", json=job_body(make_dataset(tenant, 1), tiny_base_model,
                                              caption_prefix="zkw"), headers=tenant.auth)
    assert r.status_code == 429 and r.json()["quota"] == "monthly_gpu_seconds_limit", r.text


@pytest.mark.slow
def test_gpu_quota_stops_a_running_job_and_keeps_its_saved_steps(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    [job_id] = _jobs(client, tenant, tiny_base_model, 1, steps=5000, every=2,
                     validate_every_n_steps=2500)
    with celery_worker(service_env, log_path=tmp_path / "worker.log"):
        # Worker start-up (imports, model load) takes a varying while on a loaded machine: set
        # the quota once training is under way, a few seconds above what the job has used.
        running = wait_for(client, tenant, job_id, lambda j: j["progress"]["step"] >= 4,
                           timeout_s=180, poll_s=0.2)
        limit = int(running["gpu_seconds"]) + 3
        _limits(tenant.org_id, monthly_gpu_seconds_limit=limit)
        started = time.monotonic()
        done = wait_for(client, tenant, job_id, lambda j: j["status"] in (
            "cancelled", "succeeded"), timeout_s=120)
        took = time.monotonic() - started
    logs = client.get(f"/v1/jobs/{job_id}/logs", headers=tenant.auth).text
    assert done["status"] == "cancelled", (done, logs[-2000:])
    assert done["error"].startswith("GPU quota reached: "), done["error"]
    assert "monthly_gpu_seconds_limit" in done["error"]
    assert 0 < done["progress"]["step"] < 5000
    # Stopped within about a flush interval (1 s) plus a step and a checkpoint of the limit
    # (generous: two shared cores).
    assert limit <= done["gpu_seconds"] < limit + 10, (done["gpu_seconds"], took)
    ckpts = client.get(f"/v1/jobs/{job_id}/checkpoints", headers=tenant.auth).json()
    assert any(c["files"] for c in ckpts), "the steps saved before the stop are kept"
    print(f"stopped at step {done['progress']['step']}, {done['gpu_seconds']} GPU s "
          f"(limit {limit}), {len(ckpts)} checkpoints, {took:.1f}s wall")
