"""DELETE /v1/jobs/{job_id}: an ended job goes with its rows and files; models finalized from it
stay; an active job is refused; the month's GPU time does not drop."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import session_scope
from app.core.keys import model_prefix
from app.models import Checkpoint, JobMetric, Model, TrainingJob, ValidationImage
from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import keys_under, make_job

LOCAL = pytest.mark.parametrize("backend", ["local"], indirect=True)


def _counts(job_id: str) -> tuple[bool, int, int, int]:
    with session_scope() as db:
        n = [int(db.scalar(select(func.count()).where(m.job_id == job_id)) or 0)
             for m in (Checkpoint, ValidationImage, JobMetric)]
        return db.get(TrainingJob, job_id) is not None, n[0], n[1], n[2]


def _set(job_id: str, **values: object) -> None:
    with session_scope() as db:
        job = db.get(TrainingJob, job_id)
        assert job is not None
        for k, v in values.items():
            setattr(job, k, v)


@LOCAL
def test_an_ended_job_goes_with_its_rows_and_files(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[2, 4])
    with session_scope() as db:
        db.add(JobMetric(job_id=fx.job_id, step=1, loss=0.5, lr=1e-4))
    assert keys_under(storage, fx.prefix) and _counts(fx.job_id)[1:] == (2, 6, 1)

    r = api.delete(f"/v1/jobs/{fx.job_id}", headers=tenant.auth)

    assert r.status_code == 204, r.text
    assert _counts(fx.job_id) == (False, 0, 0, 0)
    assert keys_under(storage, fx.prefix) == []  # checkpoints, images and state object
    assert cleanups == [(tenant.org_id, fx.job_id)]
    assert api.get(f"/v1/jobs/{fx.job_id}", headers=tenant.auth).status_code == 404
    assert api.delete(f"/v1/jobs/{fx.job_id}", headers=tenant.auth).status_code == 404
    events = api.get("/v1/audit-events?action=job.delete", headers=tenant.auth).json()["items"]
    assert [(e["target_id"], e["details"]["status"]) for e in events] == [
        (fx.job_id, "succeeded")]


@LOCAL
def test_models_finalized_from_the_job_stay(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[2, 4])
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [4]}, headers=tenant.auth)
    assert r.status_code == 200, r.text
    model = r.json()["models"][0]
    files_before = keys_under(storage, model_prefix(tenant.org_id, model["id"]))

    assert api.delete(f"/v1/jobs/{fx.job_id}", headers=tenant.auth).status_code == 204

    got = api.get(f"/v1/models/{model['id']}", headers=tenant.auth)
    assert got.status_code == 200 and got.json()["job_id"] is None
    assert keys_under(storage, model_prefix(tenant.org_id, model["id"])) == files_before
    assert api.get(f"/v1/models/{model['id']}/download", headers=tenant.auth,
                   follow_redirects=False).status_code in (200, 302, 307)
    with session_scope() as db:
        assert db.get(Model, model["id"]) is not None


@LOCAL
@pytest.mark.parametrize("status", ["queued", "running", "cancelling"])
def test_an_active_job_is_refused(api: TestClient, storage: Storage, tenant: Tenant,
                                  cleanups: list[tuple[str, str]], status: str) -> None:
    fx = make_job(storage, tenant.org_id, steps=[2], status=status)
    r = api.delete(f"/v1/jobs/{fx.job_id}", headers=tenant.auth)
    assert r.status_code == 409, r.text
    assert "cancel it first" in r.json()["detail"]
    assert _counts(fx.job_id)[:2] == (True, 1)
    assert keys_under(storage, fx.prefix) and cleanups == []


@LOCAL
def test_other_orgs_and_read_only_keys_cannot_delete(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[2], status="failed")
    stranger = make_tenant()
    assert api.delete(f"/v1/jobs/{fx.job_id}", headers=stranger.auth).status_code == 404
    from app.identity import service

    with session_scope() as db:
        _, key = service.create_api_key(db, tenant.org_id, "reader", ["jobs:read"])
    reader = {"Authorization": f"Bearer {key}"}
    assert api.get(f"/v1/jobs/{fx.job_id}", headers=reader).status_code == 200
    assert api.delete(f"/v1/jobs/{fx.job_id}", headers=reader).status_code == 403
    assert _counts(fx.job_id)[0] is True and cleanups == []


@LOCAL
def test_deleting_a_job_gives_no_gpu_time_back(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    def used() -> float:
        r = api.get("/v1/usage", headers=tenant.auth)
        assert r.status_code == 200, r.text
        return float(r.json()["gpu_seconds_this_month"])

    fx = make_job(storage, tenant.org_id, steps=[2], status="cancelled")
    _set(fx.job_id, gpu_seconds=123.5)
    other = make_job(storage, tenant.org_id, steps=[2], status="failed")
    _set(other.job_id, gpu_seconds=10.0)
    assert used() == pytest.approx(133.5)

    assert api.delete(f"/v1/jobs/{fx.job_id}", headers=tenant.auth).status_code == 204
    assert used() == pytest.approx(133.5)
    assert api.delete(f"/v1/jobs/{other.job_id}", headers=tenant.auth).status_code == 204
    assert used() == pytest.approx(133.5)
