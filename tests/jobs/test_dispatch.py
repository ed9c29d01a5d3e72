"""Fair dispatch across orgs, per-org limits, and the reconciler's repairs (real PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from app.core.db import session_scope
from app.jobs.dispatch import dispatch, pick_jobs, reconcile
from app.jobs.state import now, transition
from app.models import Organization, TrainingJob
from tests.conftest import Tenant, make_tenant


def _queue(tenant: Tenant, n: int) -> list[str]:
    ids = []
    with session_scope() as db:
        for i in range(n):
            job = TrainingJob(org_id=tenant.org_id, name=f"j{i}", type="lora",
                              architecture="sd15", base_model="tiny", config={},
                              dataset_snapshot=[], status="queued", total_steps=10)
            db.add(job)
            db.flush()
            ids.append(job.id)
    return ids


def _start(job_id: str) -> None:
    with session_scope() as db:
        assert transition(db, job_id, ["queued"], "running", worker_id="w", heartbeat_at=now(),
                          started_at=now(),
                          dispatched_at=None)


def _finish(job_id: str) -> None:
    with session_scope() as db:
        assert transition(db, job_id, ["running"], "succeeded")


def _set_limit(tenant: Tenant, limit: int) -> None:
    with session_scope() as db:
        db.get(Organization, tenant.org_id).max_concurrent_jobs = limit  # type: ignore[union-attr]


def test_orgs_interleave_instead_of_first_come_first_served() -> None:
    busy, small = make_tenant(), make_tenant()
    _set_limit(busy, 5)
    busy_jobs = _queue(busy, 6)
    small_jobs = _queue(small, 1)  # queued after all of busy's jobs
    order = []
    # One GPU: each round dispatches one job, which starts and finishes.
    for _ in range(7):
        with session_scope() as db:
            sent = dispatch(db)
        assert len(sent) == 1
        order.append(sent[0])
        _start(sent[0])
        _finish(sent[0])
    assert order[0] == busy_jobs[0]
    assert order.index(small_jobs[0]) == 1, "the small org waited behind the busy org's queue"
    assert order[2:] == busy_jobs[1:]


def test_round_robin_with_several_gpus_and_per_org_limit() -> None:
    a, b, c = make_tenant(), make_tenant(), make_tenant()
    _set_limit(a, 2)
    jobs_a, jobs_b, jobs_c = _queue(a, 5), _queue(b, 5), _queue(c, 1)
    with session_scope() as db:
        picked = [j.id for j in pick_jobs(db, 6)]
    # Everyone gets one before anyone gets a second; b's limit (default 2) and a's cap apply.
    assert set(picked[:3]) == {jobs_a[0], jobs_b[0], jobs_c[0]}
    assert picked[3:] == [jobs_a[1], jobs_b[1]]


def test_org_limit_holds_back_its_own_jobs() -> None:
    t = make_tenant()
    _set_limit(t, 1)
    first, second = _queue(t, 2)
    with session_scope() as db:
        assert dispatch(db) == [first]
    _start(first)
    with session_scope() as db:
        assert dispatch(db) == []  # one running, limit 1
    _finish(first)
    with session_scope() as db:
        assert dispatch(db) == [second]


def test_reconciler_requeues_silent_workers_and_fails_after_max_attempts() -> None:
    t = make_tenant()
    _set_limit(t, 3)
    retryable, exhausted, cancelling = _queue(t, 3)
    old = now() - timedelta(hours=1)
    with session_scope() as db:
        for job_id in (retryable, exhausted, cancelling):
            transition(db, job_id, ["queued"], "running", worker_id="dead", heartbeat_at=old,
                       attempts=1)
        db.get(TrainingJob, exhausted).attempts = 3  # type: ignore[union-attr]
        transition(db, cancelling, ["running"], "cancelling")
    with session_scope() as db:
        counts = reconcile(db)
    assert counts["requeued"] == 1 and counts["failed"] == 1
    with session_scope() as db:
        assert db.get(TrainingJob, retryable).status == "queued"  # type: ignore[union-attr]
        failed = db.get(TrainingJob, exhausted)
        assert failed.status == "failed" and "3 times" in failed.error  # type: ignore[union-attr,operator]
        assert db.get(TrainingJob, cancelling).status == "cancelled"  # type: ignore[union-attr]


def test_reconciler_resends_jobs_the_broker_lost() -> None:
    t = make_tenant()
    (job_id,) = _queue(t, 1)
    with session_scope() as db:
        assert dispatch(db) == [job_id]
        assert dispatch(db) == []  # sent and not started: not sent twice
    with session_scope() as db:
        db.get(TrainingJob, job_id).dispatched_at = now() - timedelta(hours=1)  # type: ignore[union-attr]
    with session_scope() as db:
        assert reconcile(db)["redispatched"] == 1
    with session_scope() as db:
        assert dispatch(db) == [job_id]
