"""Real Celery worker processes on the real Redis broker, training a tiny model for real."""

from __future__ import annotations

import signal
import time

import pytest
import redis
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.jobs.dispatch import reconcile_and_dispatch
from app.models import Checkpoint, TrainingJob
from app.storage.factory import get_storage
from tests.conftest import Tenant, configure
from tests.jobs.conftest import job_body, make_dataset
from tests.jobs.flow import ended, read_events, wait_for
from tests.processes import celery_worker, stop

pytestmark = pytest.mark.slow


@pytest.fixture()
def fast_recovery(service_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Short heartbeat and redispatch timeouts, for this process and its workers."""
    env = {**service_env, "ATELIER_HEARTBEAT_TIMEOUT_S": "4", "ATELIER_REDISPATCH_AFTER_S": "1",
           "ATELIER_DISPATCH_SLOTS": "2"}
    configure(env)
    yield env
    for key in ("ATELIER_HEARTBEAT_TIMEOUT_S", "ATELIER_REDISPATCH_AFTER_S",
                "ATELIER_DISPATCH_SLOTS"):
        env.pop(key)
        import os

        os.environ.pop(key, None)
    configure(service_env)


def _keys(prefix: str) -> list[str]:
    return sorted(o.key for o in get_storage().list(prefix))


def test_ti_and_lora_jobs_succeed_with_live_events(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    ds = make_dataset(tenant, 3)
    with celery_worker(service_env, log_path=tmp_path / "worker.log"):
        lora = client.post("/v1/jobs", json=job_body(ds, tiny_base_model, caption_prefix="zkw"),
                           headers=tenant.auth).json()
        ti = client.post("/v1/jobs", json=job_body(ds, tiny_base_model,
                                                   type_="textual_inversion"),
                         headers=tenant.auth).json()
        events = read_events(client, tenant, lora["id"], timeout_s=240)
        wait_for(client, tenant, ti["id"], ended("succeeded"))
    assert events[0] == "status" and events[-1] == "status"
    assert "progress" in events and "checkpoint" in events and "validation" in events

    for job, filename in ((lora, "lora.safetensors"), (ti, "embedding.safetensors")):
        done = client.get(f"/v1/jobs/{job['id']}", headers=tenant.auth).json()
        assert done["status"] == "succeeded" and done["progress"]["step"] == 6
        assert done["gpu_seconds"] > 0 and done["finished_at"]
        ckpts = client.get(f"/v1/jobs/{job['id']}/checkpoints", headers=tenant.auth).json()
        assert [c["step"] for c in ckpts] == [0, 3, 6]
        assert ckpts[0]["files"] == [] and ckpts[0]["validation_images"]  # step-0 baseline
        assert [f["name"] for f in ckpts[-1]["files"]] == [filename]
        keys = _keys(f"orgs/{tenant.org_id}/jobs/{job['id']}/")
        assert any("checkpoints/step-000006/" in k for k in keys), keys
        assert any("validation/step-000000/p0-0.webp" in k for k in keys), keys
        metrics = client.get(f"/v1/jobs/{job['id']}/metrics", headers=tenant.auth).json()
        assert metrics["steps"] == [1, 2, 3, 4, 5, 6] and len(metrics["loss"]) == 6
        assert "checkpoint saved" in client.get(f"/v1/jobs/{job['id']}/logs",
                                                headers=tenant.auth).text


def test_cancel_running_job_keeps_saved_checkpoints(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
) -> None:
    ds = make_dataset(tenant, 2)
    with celery_worker(service_env):
        job = client.post("/v1/jobs", json=job_body(ds, tiny_base_model, steps=400, every=2,
                                                    caption_prefix="zkw"),
                          headers=tenant.auth).json()
        wait_for(client, tenant, job["id"],
                 lambda j: j["status"] == "running" and j["progress"]["step"] >= 3)
        asked = time.monotonic()
        r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.auth)
        assert r.json()["status"] in ("cancelling", "cancelled")
        done = wait_for(client, tenant, job["id"], ended("cancelled"), timeout_s=60)
        took = time.monotonic() - asked
    assert took < 30, f"cancel took {took:.1f}s"
    assert done["progress"]["step"] < 400
    ckpts = client.get(f"/v1/jobs/{job['id']}/checkpoints", headers=tenant.auth).json()
    assert any(c["files"] for c in ckpts), "the checkpoints saved before the cancel are kept"


def test_sigkilled_worker_job_resumes_on_another_worker(
    client: TestClient, tenant: Tenant, tiny_base_model: str, fast_recovery: dict[str, str],
) -> None:
    ds = make_dataset(tenant, 2)
    # Long enough that the kill lands mid-run; a training state is saved every 5 steps.
    body = job_body(ds, tiny_base_model, steps=80, every=5, caption_prefix="zkw",
                    validate_every_n_steps=40)
    job = client.post("/v1/jobs", json=body, headers=tenant.auth).json()
    with celery_worker(fast_recovery) as first:
        wait_for(client, tenant, job["id"], lambda j: j["progress"]["step"] >= 6, poll_s=0.05)
        stop(first, sig=signal.SIGKILL)
    killed_at = client.get(f"/v1/jobs/{job['id']}", headers=tenant.auth).json()
    assert killed_at["status"] == "running" and killed_at["progress"]["step"] < 80
    time.sleep(4.5)  # the heartbeat goes stale
    counts = reconcile_and_dispatch()
    assert counts["requeued"] == 1, counts
    with celery_worker(fast_recovery):
        done = wait_for(client, tenant, job["id"], ended("succeeded"))
    assert done["attempts"] == 2 and done["progress"]["step"] == 80
    with session_scope() as db:
        steps = [c.step for c in db.query(Checkpoint).filter_by(job_id=job["id"])]
    assert sorted(steps) == list(range(5, 81, 5)), "no duplicate or missing checkpoints"
    logs = client.get(f"/v1/jobs/{job['id']}/logs", headers=tenant.auth).text
    assert "resuming from the training state saved at step" in logs


def test_reconciler_recovers_jobs_after_redis_is_flushed(
    client: TestClient, tenant: Tenant, tiny_base_model: str, fast_recovery: dict[str, str],
) -> None:
    ds = make_dataset(tenant, 2)
    ids = [client.post("/v1/jobs", json=job_body(ds, tiny_base_model, steps=2, every=2,
                                                 caption_prefix="zkw"),
                       headers=tenant.auth).json()["id"] for _ in range(2)]
    with session_scope() as db:
        assert all(db.get(TrainingJob, i).dispatched_at is not None for i in ids)  # type: ignore[union-attr]
    redis.Redis.from_url(fast_recovery["ATELIER_BROKER_URL"]).flushdb()  # messages lost
    time.sleep(1.2)
    assert reconcile_and_dispatch()["redispatched"] == 2
    with celery_worker(fast_recovery):
        for job_id in ids:
            wait_for(client, tenant, job_id, ended("succeeded"))
