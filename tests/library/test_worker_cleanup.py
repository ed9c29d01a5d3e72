"""End to end through Celery: finalize sends the cleanup task after commit; a real worker
deletes the job's objects."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.storage.base import Storage
from tests.conftest import Tenant
from tests.library.helpers import keys_under, make_job
from tests.processes import celery_worker


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_a_real_worker_cleans_the_job_prefix(
    backend: str, storage: Storage, tenant: Tenant, tmp_path: Path
) -> None:
    from app.main import create_app

    fx = make_job(storage, tenant.org_id, steps=[1, 2, 3])
    log = tmp_path / "worker.log"
    with celery_worker(dict(os.environ), queues="default", log_path=log), \
            TestClient(create_app()) as api:
        r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [2]},
                     headers=tenant.auth)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while keys_under(storage, fx.prefix) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert keys_under(storage, fx.prefix) == [], log.read_text()[-3000:]
    assert "atelier.cleanup_job_storage" in log.read_text()
