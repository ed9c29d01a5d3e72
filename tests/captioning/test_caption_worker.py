"""Caption jobs on real Celery worker processes and the real Redis broker, captioning with
tiny random captioners for real: exact items, no caption changed, cancel, worker loss."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.jobs.dispatch import reconcile_and_dispatch
from app.models import CaptionSuggestion, DatasetItem
from tests.captioning.conftest import create_job, dataset_with, items_of
from tests.conftest import Tenant, configure
from tests.processes import celery_worker, stop

pytestmark = pytest.mark.slow


def wait_job(client: TestClient, tenant: Tenant, job_id: str, until: Any,
             timeout_s: float = 240, poll_s: float = 0.2) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/caption-jobs/{job_id}", headers=tenant.auth).json()
        if until(job):
            return job
        assert job["status"] != "failed", job["error"]
        time.sleep(poll_s)
    raise TimeoutError(f"caption job {job_id}: {job}")


def _suggestions(dataset_id: str) -> dict[str, tuple[str, int, Any]]:
    with session_scope() as db:
        return {s.item_id: (s.caption_job_id, s.attempt, s.created_at)
                for s in db.query(CaptionSuggestion).filter_by(dataset_id=dataset_id)}


@pytest.fixture()
def one_per_batch(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """One image per batch and short recovery timeouts, for this process and its workers."""
    extra = {"ATELIER_CAPTION_BATCH_SIZE": "1", "ATELIER_HEARTBEAT_TIMEOUT_S": "4",
             "ATELIER_REDISPATCH_AFTER_S": "1"}
    env = {**service_env, **extra}
    configure(env)
    yield env
    for key in extra:
        os.environ.pop(key, None)
    configure(service_env)


def test_suggestions_for_exactly_the_requested_items_and_no_caption_changes(
    client: TestClient, tenant: Tenant, tiny_captioners: dict[str, str],
    service_env: dict[str, str], tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    ds, ids = dataset_with(tenant, [None, "mine", None, "also mine", None])
    usage_before = client.get("/v1/usage", headers=tenant.auth).json()["gpu_seconds_this_month"]
    with celery_worker(service_env, log_path=tmp_path / "worker.log"):
        first = create_job(client, tenant, ds, captioner=tiny_captioners["tags"], prefix="zkw")
        with client.stream("GET", f"/v1/caption-jobs/{first['id']}/events",
                           headers=tenant.auth) as r:
            events = [ln.removeprefix("event: ") for ln in r.iter_lines()
                      if ln.startswith("event: ")]
        done = wait_job(client, tenant, first["id"], lambda j: j["status"] == "succeeded")
        assert done["progress"] == {"done": 3, "total": 3} and done["gpu_seconds"] > 0
        assert events[-1] == "status" and "progress" in events
        uncaptioned = _suggestions(ds)
        assert set(uncaptioned) == {ids[0], ids[2], ids[4]}
        assert {job for job, _, _ in uncaptioned.values()} == {first["id"]}

        every = create_job(client, tenant, ds, captioner=tiny_captioners["sentence"],
                           mode="all", max_length=8)
        wait_job(client, tenant, every["id"], lambda j: j["status"] == "succeeded")
    assert set(_suggestions(ds)) == set(ids)
    assert {job for job, _, _ in _suggestions(ds).values()} == {every["id"]}, \
        "one current suggestion per item: the newer job's"
    items = items_of(client, tenant, ds)
    assert [items[i]["caption"] for i in ids] == [None, "mine", None, "also mine", None]
    assert all(items[i]["suggestion"]["text"].strip() for i in ids)
    usage = client.get("/v1/usage", headers=tenant.auth).json()["gpu_seconds_this_month"]
    assert usage >= usage_before + done["gpu_seconds"]


def test_cancel_lands_within_seconds(
    client: TestClient, tenant: Tenant, tiny_captioners: dict[str, str],
    one_per_batch: dict[str, str],
) -> None:
    ds, _ = dataset_with(tenant, [None] * 40)
    with celery_worker(one_per_batch):
        job = create_job(client, tenant, ds, captioner=tiny_captioners["sentence"])
        wait_job(client, tenant, job["id"],
                 lambda j: j["status"] == "running" and j["progress"]["done"] >= 1, poll_s=0.05)
        asked = time.monotonic()
        r = client.post(f"/v1/caption-jobs/{job['id']}/cancel", headers=tenant.auth)
        assert r.status_code == 200 and r.json()["status"] in ("cancelling", "cancelled")
        done = wait_job(client, tenant, job["id"], lambda j: j["status"] == "cancelled",
                        timeout_s=60, poll_s=0.1)
        took = time.monotonic() - asked
    assert took < 15, f"cancel took {took:.1f}s"
    assert done["progress"]["done"] < 40
    assert len(_suggestions(ds)) == done["progress"]["done"], "finished images keep theirs"


def test_sigkilled_worker_resumes_without_redoing_finished_images(
    client: TestClient, tenant: Tenant, tiny_captioners: dict[str, str],
    one_per_batch: dict[str, str],
) -> None:
    n = 12
    ds, ids = dataset_with(tenant, [None] * n)
    job = create_job(client, tenant, ds, captioner=tiny_captioners["sentence"])
    with celery_worker(one_per_batch) as first:
        wait_job(client, tenant, job["id"], lambda j: j["progress"]["done"] >= 2, poll_s=0.02)
        stop(first, sig=signal.SIGKILL)
    killed = client.get(f"/v1/caption-jobs/{job['id']}", headers=tenant.auth).json()
    assert killed["status"] == "running" and killed["progress"]["done"] < n
    before = _suggestions(ds)
    # Suggestions and progress are committed together: exactly the counted images have one.
    assert len(before) == killed["progress"]["done"]
    assert {attempt for _, attempt, _ in before.values()} == {1}
    time.sleep(4.5)  # the heartbeat goes stale
    assert reconcile_and_dispatch()["requeued"] == 1
    with celery_worker(one_per_batch):
        done = wait_job(client, tenant, job["id"], lambda j: j["status"] == "succeeded")
    assert done["progress"] == {"done": n, "total": n}
    after = _suggestions(ds)
    assert set(after) == set(ids)
    for item_id, (job_id, attempt, created_at) in after.items():
        assert job_id == job["id"]
        if item_id in before:  # not redone: the first attempt's row, untouched
            assert (attempt, created_at) == (1, before[item_id][2])
        else:
            assert attempt == 2
    with session_scope() as db:
        assert db.query(DatasetItem).filter(DatasetItem.dataset_id == ds,
                                            DatasetItem.caption.is_not(None)).count() == 0
