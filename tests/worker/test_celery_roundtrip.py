"""A real worker process on the real Redis broker; tasks leave only after commit."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.db import get_sessionmaker
from tests.processes import celery_worker


@pytest.mark.slow
def test_task_round_trip_through_redis(service_env: dict[str, str]) -> None:
    from worker.tasks import ping

    assert service_env["ATELIER_BROKER_URL"].startswith("redis://")
    with celery_worker(service_env, queues="default"):
        result = ping.delay("hello").get(timeout=60)
    assert result["token"] == "hello"


def test_deferred_callbacks_run_only_after_commit(service_env: dict[str, str]) -> None:
    sent: list[str] = []
    session: Session = get_sessionmaker()()
    defer(session, lambda: sent.append("committed"))
    assert sent == []
    session.commit()
    assert sent == ["committed"]

    defer(session, lambda: sent.append("rolled back"))
    session.rollback()
    session.commit()
    assert sent == ["committed"]
    session.close()


@pytest.mark.slow
def test_beat_runs_the_reconciler(service_env: dict[str, str], isolated_queue: None,
                                  tmp_path: Path) -> None:
    """The periodic reconciler really runs: a job whose worker went silent is dealt with."""
    from app.core.db import session_scope
    from app.jobs.state import now
    from app.models import TrainingJob
    from tests.conftest import make_tenant

    tenant = make_tenant()
    with session_scope() as db:
        job = TrainingJob(org_id=tenant.org_id, name="orphan", type="lora", architecture="sd15",
                          base_model="tiny", config={}, dataset_snapshot=[], status="running",
                          worker_id="gone", heartbeat_at=now() - timedelta(hours=1),
                          attempts=1, max_attempts=1)
        db.add(job)
        db.flush()
        job_id = job.id
    env = {**service_env, "ATELIER_RECONCILE_INTERVAL_S": "1"}
    with celery_worker(env, beat_schedule=tmp_path / "beat-schedule"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with session_scope() as db:
                status = db.get(TrainingJob, job_id).status  # type: ignore[union-attr]
            if status == "failed":
                break
            time.sleep(0.5)
    assert status == "failed"
