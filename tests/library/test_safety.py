"""Finalize under failure and concurrency: retried cleanup, one winner, Idempotency-Key."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import session_scope
from app.core.keys import model_prefix
from app.library import cleanup
from app.models import IdempotencyRecord, Model, TrainingJob
from app.storage.base import Storage, StorageError
from tests.conftest import Tenant
from tests.library.helpers import keys_under, make_job

LOCAL = pytest.mark.parametrize("backend", ["local"], indirect=True)


def _model_count(org_id: str) -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).where(Model.org_id == org_id)) or 0)


@pytest.fixture()
def deferred(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record cleanups instead of running them, so a test can run them its own way."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(cleanup, "send_cleanup", lambda org, job: calls.append((org, job)))
    return calls


def test_a_storage_fault_during_deletion_is_retried_to_a_clean_end(
    api: TestClient, storage: Storage, tenant: Tenant, deferred: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.cleanup_tasks import cleanup_job_storage

    fx = make_job(storage, tenant.org_id, steps=[1, 2, 3])
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [1, 3]}, headers=tenant.auth)
    assert r.status_code == 200, r.text
    models = r.json()["models"]
    assert deferred == [(tenant.org_id, fx.job_id)]  # scheduled after commit, not run yet

    real_delete_many = storage.delete_many
    attempts: list[list[str]] = []

    def flaky_delete_many(keys: Any) -> None:
        keys = list(keys)
        attempts.append(keys)
        if len(attempts) == 1:  # the first call deletes a little, then storage fails
            real_delete_many(keys[:2])
            raise StorageError("injected: connection reset")
        real_delete_many(keys)

    monkeypatch.setattr(storage, "delete_many", flaky_delete_many)
    # apply() runs the task eagerly, its retries included (Celery skips the countdown then).
    result = cleanup_job_storage.apply(args=deferred[0])
    assert result.successful(), result.traceback
    assert len(attempts) == 2 and len(attempts[1]) == len(attempts[0]) - 2
    assert keys_under(storage, fx.prefix) == []
    for m in models:  # the kept files were never touched
        assert len(keys_under(storage, model_prefix(tenant.org_id, m["id"]))) == 3
    # Idempotent: running it again finds nothing to do.
    assert cleanup.run_cleanup(tenant.org_id, fx.job_id) == 0


@LOCAL
def test_cleanup_only_runs_for_finalized_jobs_and_keeps_referenced_keys(
    storage: Storage, tenant: Tenant
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1])
    before = keys_under(storage, fx.prefix)
    assert cleanup.run_cleanup(tenant.org_id, fx.job_id) == 0  # still succeeded: untouched
    with session_scope() as db:
        job = db.get(TrainingJob, fx.job_id)
        assert job is not None
        job.status = "finalized"  # rows still point at the objects (as they never should)
    assert cleanup.run_cleanup(tenant.org_id, fx.job_id) == 1  # only the untracked state file
    assert keys_under(storage, fx.prefix) == [k for k in before if "/state/" not in k]


@LOCAL
def test_a_copy_failure_changes_nothing(
    api: TestClient, storage: Storage, tenant: Tenant, deferred: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2])
    before = keys_under(storage, fx.prefix)
    real_copy, calls = storage.copy, []

    def failing_copy(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 4:
            raise StorageError("injected: copy failed")
        real_copy(src, dst)

    monkeypatch.setattr(storage, "copy", failing_copy)
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [1, 2]}, headers=tenant.auth)
    assert r.status_code == 503, r.text
    assert deferred == [] and _model_count(tenant.org_id) == 0
    assert keys_under(storage, fx.prefix) == before
    assert keys_under(storage, f"orgs/{tenant.org_id}/models/") == []  # copies undone
    with session_scope() as db:
        assert db.get(TrainingJob, fx.job_id).status == "succeeded"  # type: ignore[union-attr]


def _race(api: TestClient, url: str, bodies: list[dict[str, Any]],
          headers: list[dict[str, str]]) -> list[Any]:
    """Send the requests from threads released at the same moment."""
    barrier = threading.Barrier(len(bodies))
    results: list[Any] = [None] * len(bodies)

    def send(i: int) -> None:
        barrier.wait()
        results[i] = api.post(url, json=bodies[i], headers=headers[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@LOCAL
def test_concurrent_finalize_calls_yield_one_result(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2, 3])
    url = f"/v1/jobs/{fx.job_id}/finalize"
    bodies = [{"steps": [1]}, {"steps": [2]}, {"steps": [3]}, {"steps": [1, 2]}]
    results = _race(api, url, bodies, [tenant.auth] * 4)
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["models"]
    assert _model_count(tenant.org_id) == len(winner)
    assert len(cleanups) == 1 and keys_under(storage, fx.prefix) == []


@LOCAL
def test_idempotency_key_replays_the_first_response(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2])
    url = f"/v1/jobs/{fx.job_id}/finalize"
    headers = {**tenant.auth, "Idempotency-Key": "finalize-once"}
    results = _race(api, url, [{"steps": [2]}] * 3, [headers] * 3)
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
    first = results[0].json()
    assert all(r.json() == first for r in results)  # same models, same ids
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 2
    assert _model_count(tenant.org_id) == 1 and len(cleanups) == 1

    again = api.post(url, json={"steps": [2]}, headers=headers)
    assert again.status_code == 200 and again.json() == first
    other = api.post(url, json={"steps": [1]}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # Another key on the now finalized job is a new request: 409.
    fresh = api.post(url, json={"steps": [2]}, headers={**tenant.auth, "Idempotency-Key": "b"})
    assert fresh.status_code == 409
    with session_scope() as db:
        assert db.scalar(select(func.count()).where(
            IdempotencyRecord.org_id == tenant.org_id)) == 1  # failures store nothing


@LOCAL
def test_idempotency_keys_are_per_org(
    api: TestClient, storage: Storage, tenant: Tenant, other_tenant: Tenant
) -> None:
    a = make_job(storage, tenant.org_id, steps=[1], state_file=False)
    b = make_job(storage, other_tenant.org_id, steps=[1], state_file=False)
    for who, fx in ((tenant, a), (other_tenant, b)):
        r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [1]},
                     headers={**who.auth, "Idempotency-Key": "same-key"})
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
