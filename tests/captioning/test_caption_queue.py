"""Caption jobs share the GPU queue with training jobs: fair turns across orgs whatever the
kind, one concurrency limit, and the reconciler's repairs (real PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from app.core.db import session_scope
from app.jobs.dispatch import dispatch, pick_jobs, reconcile
from app.jobs.state import now, transition
from app.models import CaptionJob, Organization, TrainingJob
from tests.conftest import Tenant, make_tenant


def _training(tenant: Tenant, n: int) -> list[str]:
    with session_scope() as db:
        jobs = [TrainingJob(org_id=tenant.org_id, name=f"t{i}", type="lora",
                            architecture="sd15", base_model="tiny", config={},
                            dataset_snapshot=[], status="queued", total_steps=10)
                for i in range(n)]
        db.add_all(jobs)
        db.flush()
        return [j.id for j in jobs]


def _captioning(tenant: Tenant, n: int) -> list[str]:
    ids = []
    with session_scope() as db:
        for _ in range(n):  # one at a time: ids keep creation order
            job = CaptionJob(org_id=tenant.org_id, captioner="tiny", mode="all", style="tags",
                             item_ids=[], status="queued")
            db.add(job)
            db.flush()
            ids.append(job.id)
    return ids


def _limit(tenant: Tenant, n: int) -> None:
    with session_scope() as db:
        db.get(Organization, tenant.org_id).max_concurrent_jobs = n  # type: ignore[union-attr]


def _model(job_id: str) -> type[TrainingJob] | type[CaptionJob]:
    with session_scope() as db:
        return CaptionJob if db.get(CaptionJob, job_id) is not None else TrainingJob


def test_kinds_take_fair_turns_across_orgs_on_one_gpu() -> None:
    busy, small = make_tenant(), make_tenant()
    _limit(busy, 5)
    busy_jobs = _training(busy, 2) + _captioning(busy, 2)
    small_job = _captioning(small, 1)[0]  # queued after all of busy's jobs
    order = []
    for _ in range(5):  # one GPU: each round one job is sent, starts and ends
        with session_scope() as db:
            sent = dispatch(db)
        assert len(sent) == 1
        order.append(sent[0])
        model = _model(sent[0])
        with session_scope() as db:
            assert transition(db, sent[0], ["queued"], "running", model=model,
                              worker_id="w", started_at=now(), heartbeat_at=now())
            assert transition(db, sent[0], ["running"], "succeeded", model=model)
    assert order[0] == busy_jobs[0]
    assert order[1] == small_job, "the small org's caption job waited behind busy's queue"
    assert order[2:] == busy_jobs[1:], "the busy org's jobs keep their order, kinds mixed"


def test_a_running_caption_job_counts_toward_the_org_limit() -> None:
    t = make_tenant()
    _limit(t, 1)
    (caption,) = _captioning(t, 1)
    (training,) = _training(t, 1)
    with session_scope() as db:
        assert [j.id for j in pick_jobs(db, 4)] == [caption]
        assert transition(db, caption, ["queued"], "running", model=CaptionJob,
                          worker_id="w", heartbeat_at=now())
    with session_scope() as db:
        assert pick_jobs(db, 4) == [], "limit 1: the training job waits for the caption job"
        assert transition(db, caption, ["running"], "succeeded", model=CaptionJob)
    with session_scope() as db:
        assert [j.id for j in pick_jobs(db, 4)] == [training]


def test_reconciler_requeues_fails_and_ends_lost_caption_jobs() -> None:
    t = make_tenant()
    _limit(t, 3)
    retryable, exhausted, cancelling = _captioning(t, 3)
    old = now() - timedelta(hours=1)
    with session_scope() as db:
        for job_id in (retryable, exhausted, cancelling):
            transition(db, job_id, ["queued"], "running", model=CaptionJob, worker_id="dead",
                       heartbeat_at=old, attempts=1, dispatched_at=None)
        db.get(CaptionJob, exhausted).attempts = 3  # type: ignore[union-attr]
        transition(db, cancelling, ["running"], "cancelling", model=CaptionJob)
    with session_scope() as db:
        counts = reconcile(db)
    assert counts["requeued"] == 1 and counts["failed"] == 1
    with session_scope() as db:
        requeued = db.get(CaptionJob, retryable)
        assert requeued.status == "queued" and requeued.worker_id is None  # type: ignore[union-attr]
        failed = db.get(CaptionJob, exhausted)
        assert failed.status == "failed" and "Captioning stopped" in failed.error  # type: ignore[union-attr,operator]
        assert db.get(CaptionJob, cancelling).status == "cancelled"  # type: ignore[union-attr]
    with session_scope() as db:  # lost in the broker: sent again
        assert dispatch(db) == [retryable]
        db.get(CaptionJob, retryable).dispatched_at = old  # type: ignore[union-attr]
    with session_scope() as db:
        assert reconcile(db)["redispatched"] == 1
    with session_scope() as db:
        assert dispatch(db) == [retryable]
