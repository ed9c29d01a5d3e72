"""Fair dispatch of queued jobs to GPU workers, and the reconciler that repairs lost work.

The broker only ever holds a few job messages (``dispatch_slots``): the choice of which job runs
next stays here, in the database, where it can be fair. Orgs take turns: the org with the
fewest active jobs goes first, and no org exceeds its plan's concurrent-job limit. This choice
is advisory (two dispatchers may run at once): the worker's claim re-checks the limits under
the org's lock and puts an over-limit job back (app/integrations/quotas.py).

Training jobs and caption jobs (app/captioning) share this one GPU queue: both kinds are
pooled, an org's active jobs of either kind count toward its turn and its limit, and the
oldest job of the org whose turn it is goes next, whichever kind it is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.captioning.notify import caption_job_status_changed
from app.core.db import session_scope
from app.core.settings import get_settings
from app.integrations.quotas import gpu_waiting_orgs
from app.jobs.notify import job_status_changed
from app.jobs.state import QueuedJob, now, transition
from app.models import CaptionJob, JobLogLine, Organization, TrainingJob

log = logging.getLogger("atelier.dispatch")
TRAIN_TASK = "atelier.train_job"
CAPTION_TASK = "atelier.caption_job"
KINDS: tuple[type[QueuedJob], ...] = (TrainingJob, CaptionJob)
GAVE_UP = {  # why a job whose workers kept going away failed, and what to do
    TrainingJob: "Training stopped unexpectedly {n} times (the machine running it went away). "
                 "Retry the job; if it keeps failing, contact support.",
    CaptionJob: "Captioning stopped unexpectedly {n} times (the machine running it went away). "
                "Start a new caption job; the suggestions made so far are kept.",
}


def pick_jobs(db: Session, free_slots: int) -> list[QueuedJob]:
    """Queued, undispatched jobs of every kind to send now, round-robin across orgs within
    their limits."""
    waiting: list[QueuedJob] = sorted(
        (job for model in KINDS for job in db.scalars(select(model).where(
            model.status == "queued", model.dispatched_at.is_(None)))),
        key=lambda job: job.id)  # ids sort by creation time
    if not waiting or free_slots <= 0:
        return []
    active: dict[str, int] = {}
    for model in KINDS:
        for org, n in db.execute(select(model.org_id, func.count()).where(
                (model.status.in_(("running", "cancelling")))
                | ((model.status == "queued") & model.dispatched_at.is_not(None))
        ).group_by(model.org_id)):
            active[org] = active.get(org, 0) + int(n)
    limits = dict(db.execute(select(Organization.id, Organization.max_concurrent_jobs).where(
        Organization.id.in_({j.org_id for j in waiting}))).all())
    last_served = _last_served(db, set(limits))
    gpu_wait = gpu_waiting_orgs(db, set(limits))  # their GPU seconds are reserved for now
    by_org: dict[str, list[QueuedJob]] = {}
    for job in waiting:
        by_org.setdefault(job.org_id, []).append(job)
    chosen: list[QueuedJob] = []
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
    for model in KINDS:
        for column in (model.started_at, model.dispatched_at):
            for org, at in db.execute(select(model.org_id, func.max(column)).where(
                    model.org_id.in_(org_ids)).group_by(model.org_id)):
                if at is not None:
                    served[org] = max(served.get(org, ""),
                                      at.replace(tzinfo=None).isoformat())
    return served


def dispatch(db: Session) -> list[str]:
    """Mark the next fair jobs as dispatched; returns their ids (send them after commit)."""
    in_flight = sum(int(db.scalar(select(func.count()).select_from(model).where(
        model.status == "queued", model.dispatched_at.is_not(None))) or 0) for model in KINDS)
    sent = []
    for job in pick_jobs(db, get_settings().dispatch_slots - in_flight):
        model = type(job)
        moved = db.execute(update(model).where(
            model.id == job.id, model.status == "queued",
            model.dispatched_at.is_(None)).values(dispatched_at=now())
            .execution_options(synchronize_session=False))
        if moved.rowcount:  # type: ignore[attr-defined]
            sent.append(job.id)
    return sent


def send(job_ids: list[str]) -> None:
    from worker.celery_app import GPU_QUEUE, celery_app

    if not job_ids:
        return
    # A message carries only the id; its task says which kind of job it is.
    with session_scope() as db:
        captions = set(db.scalars(select(CaptionJob.id).where(CaptionJob.id.in_(job_ids))))
    for job_id in job_ids:
        model = CaptionJob if job_id in captions else TrainingJob
        try:
            celery_app.send_task(CAPTION_TASK if model is CaptionJob else TRAIN_TASK,
                                 args=[job_id], queue=GPU_QUEUE)
        except Exception:  # the broker is down: unmark it so the next dispatch sends it again
            log.exception("could not send job %s to the broker", job_id)
            with session_scope() as db:
                db.execute(update(model).where(
                    model.id == job_id, model.status == "queued"
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
    lost = t - timedelta(seconds=s.redispatch_after_s)
    for model in KINDS:
        for job in db.scalars(select(model).where(model.status.in_(("running", "cancelling")),
                                                  model.heartbeat_at < stale)):
            _repair(db, job, t, counts)
        result = db.execute(update(model).where(
            model.status == "queued", model.dispatched_at < lost
        ).values(dispatched_at=None).execution_options(synchronize_session=False))
        counts["redispatched"] += int(result.rowcount)  # type: ignore[attr-defined]
    return counts


def _repair(db: Session, job: QueuedJob, t: datetime, counts: dict[str, int]) -> None:
    """A job whose worker went silent: cancelled if asked, failed after its attempts, else
    requeued (a training job resumes from its saved state, a caption job after the items it
    already committed)."""
    model = type(job)
    if job.status == "cancelling":
        if transition(db, job.id, ["cancelling"], "cancelled", model=model, finished_at=t):
            _notify(db, job, "cancelled")
    elif job.attempts >= job.max_attempts:
        if transition(db, job.id, ["running"], "failed", model=model, finished_at=t,
                      error=GAVE_UP[model].format(n=job.attempts)):
            counts["failed"] += 1
            _notify(db, job, "failed")
    elif transition(db, job.id, ["running"], "queued", model=model, dispatched_at=None,
                    worker_id=None):
        if isinstance(job, TrainingJob):
            db.add(JobLogLine(job_id=job.id, created_at=t, message=(
                "worker stopped responding; job requeued, it resumes from its last saved state"
            )))
        counts["requeued"] += 1


def _notify(db: Session, job: QueuedJob, status: str) -> None:
    db.refresh(job)
    if isinstance(job, CaptionJob):
        caption_job_status_changed(db, job)
    else:
        job_status_changed(db, job, status)


def reconcile_and_dispatch() -> dict[str, int]:
    with session_scope() as db:
        counts = reconcile(db)
    with session_scope() as db:
        ids = dispatch(db)
    send(ids)
    counts["dispatched"] = len(ids)
    return counts
