"""Usage figures and the storage / GPU-time quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.core.errors import install_error_handlers
from app.integrations import quotas
from app.models import (
    Checkpoint,
    Dataset,
    DatasetItem,
    Model,
    Organization,
    TrainingJob,
    ValidationImage,
)
from tests.conftest import Tenant


def _job(org_id: str, status: str, gpu_seconds: float, **extra: object) -> TrainingJob:
    return TrainingJob(org_id=org_id, name=f"{status} job", type="lora", architecture="sd15",
                       base_model="tiny", config={}, dataset_snapshot=[], status=status,
                       gpu_seconds=gpu_seconds, **extra)


def _fill(org_id: str) -> None:
    """Rows in every table that counts: 1000 + 300 + 20 + 4000 bytes; 150 GPU s this month."""
    start, _ = quotas.month_bounds()
    with session_scope() as db:
        ds = Dataset(org_id=org_id, name="d")
        db.add(ds)
        db.flush()
        db.add(DatasetItem(org_id=org_id, dataset_id=ds.id, filename="a.png", storage_key="k",
                           content_type="image/png", sha256="0" * 64, width=8, height=8,
                           bytes=1000))
        jobs = [_job(org_id, s, g) for s, g in
                [("queued", 0), ("queued", 0), ("running", 50), ("cancelling", 40),
                 ("succeeded", 60)]]
        jobs.append(_job(org_id, "succeeded", 999, created_at=start - timedelta(days=1)))
        db.add_all(jobs)
        db.flush()
        db.add(Checkpoint(org_id=org_id, job_id=jobs[4].id, step=10, files=[], bytes=300))
        db.add(ValidationImage(org_id=org_id, job_id=jobs[4].id, step=10, prompt_index=0,
                               image_index=0, prompt="p", seed=1, storage_key="v", bytes=20))
        db.add(Model(org_id=org_id, name="m", type="lora", architecture="sd15",
                     base_model="tiny", step=10, files=[], bytes=4000))


def test_usage_numbers(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    _fill(tenant.org_id)
    r = client.get("/v1/usage", headers=tenant.auth)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["storage_bytes_used"] == 5320 and u["storage_bytes_limit"] == 20 * 1024**3
    assert (u["running_jobs"], u["queued_jobs"], u["max_concurrent_jobs"]) == (2, 2, 2)
    assert u["gpu_seconds_this_month"] == 150 and u["monthly_gpu_seconds_limit"] == 360000
    assert u["period_start"] < u["period_end"]
    empty = client.get("/v1/usage", headers=other_tenant.auth).json()
    assert empty["storage_bytes_used"] == 0 and empty["gpu_seconds_this_month"] == 0
    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None and quotas.free_job_slots(db, org) == 0


def _render(exc: Exception) -> TestClient:
    """The app's own error handlers render the quota errors as they would in any route."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app)


def test_storage_quota_names_the_limit(service_env: dict[str, str], tenant: Tenant) -> None:
    _fill(tenant.org_id)
    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None
        org.storage_limit_bytes = 6000
        quotas.check_storage(db, org, 680)  # exactly at the limit is fine
        with pytest.raises(quotas.StorageQuotaExceeded) as caught:
            quotas.check_storage(db, org, 681)
    r = _render(caught.value).get("/boom")
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "Storage quota exceeded" and "storage_limit_bytes" in body["detail"]
    assert (body["quota"], body["used"], body["limit"], body["requested"]) == (
        "storage_limit_bytes", 5320, 6000, 681)


def test_gpu_quota_names_the_limit(service_env: dict[str, str], tenant: Tenant) -> None:
    _fill(tenant.org_id)
    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None
        org.monthly_gpu_seconds_limit = 151
        quotas.check_can_start_job(db, org)
        org.monthly_gpu_seconds_limit = 150
        with pytest.raises(quotas.GpuQuotaExceeded) as caught:
            quotas.check_can_start_job(db, org)
    r = _render(caught.value).get("/boom")
    assert r.status_code == 429 and r.json()["title"] == "Quota exceeded"
    assert "monthly_gpu_seconds_limit" in r.json()["detail"]
    assert (r.json()["used"], r.json()["limit"]) == (150, 150)
    _, end = quotas.month_bounds()
    left = (end - datetime.now(UTC)).total_seconds()
    assert abs(int(r.headers["retry-after"]) - left) < 5
