"""Fair dispatch of queued jobs to GPU workers, and the reconciler that repairs lost work.

The broker only ever holds a few job messages (``dispatch_slots``): the choice of which job runs
next stays here, in the database, where it can be fair. Orgs take turns: the org with the
fewest active jobs goes first, and no org exceeds its plan's concurrent-job limit. This choice
is advisory (two dispatchers may run at once): the worker's claim re-checks the limits under
the org's lock and puts an over-limit job back (app/integrations/quotas.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.core.settings import get_settings
from app.integrations.quotas import gpu_waiting_orgs
from app.jobs.notify import job_status_changed
from app.jobs.state import now, transition
from app.models import JobLogLine, Organization, TrainingJob

log = logging.getLogger("atelier.dispatch")
TRAIN_TASK = "atelier.train_job"


def pick_jobs(db: Session, free_slots: int) -> list[TrainingJob]:
    """Queued, undispatched jobs to send now, round-robin across orgs within their limits."""
    waiting = list(db.scalars(select(TrainingJob).where(
        TrainingJob.status == "queued", TrainingJob.dispatched_at.is_(None)
    ).order_by(TrainingJob.id)))
    if not waiting or free_slots <= 0:
        return []
    active_rows = db.execute(select(TrainingJob.org_id, func.count()).where(
        (TrainingJob.status.in_(("running", "cancelling")))
        | ((TrainingJob.status == "queued") & TrainingJob.dispatched_at.is_not(None))
    ).group_by(TrainingJob.org_id)).all()
    active = {org: int(n) for org, n in active_rows}
    limits = dict(db.execute(select(Organization.id, Organization.max_concurrent_jobs).where(
        Organization.id.in_({j.org_id for j in waiting}))).all())
    last_served = _last_served(db, set(limits))
    gpu_wait = gpu_waiting_orgs(db, set(limits))  # their GPU seconds are reserved for now
    by_org: dict[str, list[TrainingJob]] = {}
    for job in waiting:
        by_org.setdefault(job.org_id, []).append(job)
    chosen: list[TrainingJob] = []
    turn = 0
    while len(chosen) < free_slots:
        eligible = [org for org, jobs in by_org.items()
                    if jobs and active.get(org, 0) < limits.get(org, 1) and org not in gpu_wait]
        if not eligible:
            break
        # Fewest active jobs first, then the org served least recently, then the oldest job.
        org = min(eligible, key=lambda o: (active.get(o, 0), last_served.get(o, ""),
                                           by_org[o][0].id))
        chosen.append(by_org[org].pop(0))
        active[org] = active.get(org, 0) + 1
        turn += 1
        last_served[org] = f"~{turn:06d}"  # sorts after every real timestamp: served just now
    return chosen


def _last_served(db: Session, org_ids: set[str]) -> dict[str, str]:
    """When each org last had a job dispatched or started (ISO text, comparable)."""
    served: dict[str, str] = {}
    for column in (TrainingJob.started_at, TrainingJob.dispatched_at):
        for org, at in db.execute(select(TrainingJob.org_id, func.max(column)).where(
                TrainingJob.org_id.in_(org_ids)).group_by(TrainingJob.org_id)):
            if at is not None:
                served[org] = max(served.get(org, ""), at.replace(tzinfo=None).isoformat())
    return served


def dispatch(db: Session) -> list[str]:
    """Mark the next fair jobs as dispatched; returns their ids (send them after commit)."""
    in_flight = db.scalar(select(func.count()).select_from(TrainingJob).where(
        TrainingJob.status == "queued", TrainingJob.dispatched_at.is_not(None))) or 0
    sent = []
    for job in pick_jobs(db, get_settings().dispatch_slots - int(in_flight)):
        moved = db.execute(update(TrainingJob).where(
            TrainingJob.id == job.id, TrainingJob.status == "queued",
            TrainingJob.dispatched_at.is_(None)).values(dispatched_at=now())
            .execution_options(synchronize_session=False))
        if moved.rowcount:  # type: ignore[attr-defined]
            sent.append(job.id)
    return sent


def send(job_ids: list[str]) -> None:
    from worker.celery_app import GPU_QUEUE, celery_app

    for job_id in job_ids:
        try:
            celery_app.send_task(TRAIN_TASK, args=[job_id], queue=GPU_QUEUE)
        except Exception:  # the broker is down: unmark it so the next dispatch sends it again
            log.exception("could not send job %s to the broker", job_id)
            with session_scope() as db:
                db.execute(update(TrainingJob).where(
                    TrainingJob.id == job_id, TrainingJob.status == "queued"
                ).values(dispatched_at=None).execution_options(synchronize_session=False))


def dispatch_soon() -> None:
    """Dispatch in a transaction of its own and send after it commits."""
    try:
        with session_scope() as db:
            ids = dispatch(db)
    except Exception:
        log.exception("dispatch failed; the reconciler will retry")
        return
    send(ids)


def reconcile(db: Session) -> dict[str, int]:
    """Repair what a crash or a lost broker left behind. Safe to run anywhere, any time."""
    s = get_settings()
    t = now()
    counts = {"requeued": 0, "failed": 0, "redispatched": 0}
    stale = t - timedelta(seconds=s.heartbeat_timeout_s)
    for job in db.scalars(select(TrainingJob).where(
            TrainingJob.status.in_(("running", "cancelling")),
            TrainingJob.heartbeat_at < stale)):
        if job.status == "cancelling":
            if transition(db, job.id, ["cancelling"], "cancelled", finished_at=t):
                _notify(db, job, "cancelled")
        elif job.attempts >= job.max_attempts:
            if transition(db, job.id, ["running"], "failed", finished_at=t, error=(
                    f"Training stopped unexpectedly {job.attempts} times (the machine running "
                    "it went away). Retry the job; if it keeps failing, contact support.")):
                counts["failed"] += 1
                _notify(db, job, "failed")
        elif transition(db, job.id, ["running"], "queued", dispatched_at=None, worker_id=None):
            db.add(JobLogLine(job_id=job.id, created_at=t, message=(
                "worker stopped responding; job requeued, it resumes from its last saved state")))
            counts["requeued"] += 1
    lost = t - timedelta(seconds=s.redispatch_after_s)
    result = db.execute(update(TrainingJob).where(
        TrainingJob.status == "queued", TrainingJob.dispatched_at < lost
    ).values(dispatched_at=None).execution_options(synchronize_session=False))
    counts["redispatched"] = int(result.rowcount)  # type: ignore[attr-defined]
    return counts


def _notify(db: Session, job: TrainingJob, status: str) -> None:
    db.refresh(job)
    job_status_changed(db, job, status)


def reconcile_and_dispatch() -> dict[str, int]:
    with session_scope() as db:
        counts = reconcile(db)
    with session_scope() as db:
        ids = dispatch(db)
    send(ids)
    counts["dispatched"] = len(ids)
    return counts
