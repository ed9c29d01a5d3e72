"""The start of a run, shared by the training and the caption runner: a queued job moves to
running only under its org's limits, checked and recorded as one step under the org's lock
(app/integrations/quotas.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.locking import lock_org
from app.integrations import quotas
from app.jobs.state import now, transition
from app.models import CaptionJob, Organization, TrainingJob

J = TypeVar("J", TrainingJob, CaptionJob)


def claim_queued(db: Session, model: type[J], job_id: str, worker_id: str,
                 not_started: Callable[[Session, J, str, str], None],
                 values: Callable[[J], dict[str, Any]] = lambda job: {}) -> J | None:
    """The job, refreshed, once this worker has moved it from queued to running (with
    ``values(job)`` besides the common columns); None when it is gone or no longer queued, was
    claimed meanwhile, or is over a limit. Over a limit it fails with the reason or waits in
    the queue undispatched (``hold_or_refuse``), and then ``not_started(db, job, outcome, why)``
    tells the tenant, with outcome "failed" or "waiting"."""
    job = db.get(model, job_id)
    if job is None:
        return None
    lock_org(db, job.org_id)
    db.refresh(job)
    org = db.get(Organization, job.org_id)
    if job.status != "queued" or org is None:
        return None
    decision, why = quotas.start_decision(db, org, job)
    if decision != "start":
        outcome = hold_or_refuse(db, model, job, decision == "refuse", why)
        if outcome:
            not_started(db, job, outcome, why)
        return None
    if not transition(db, job_id, ["queued"], "running", model=model, worker_id=worker_id,
                      heartbeat_at=now(), started_at=job.started_at or now(),
                      attempts=model.attempts + 1, dispatched_at=None, **values(job)):
        return None  # cancelled meanwhile, or a duplicate message: nothing to do
    db.refresh(job)
    return job


def hold_or_refuse(db: Session, model: type[J], job: J, refuse: bool, why: str) -> str | None:
    """Fail a queued job with ``why`` ("failed"), or leave it queued but undispatched, so the
    next sweep offers it again ("waiting"); None when it was no longer queued to fail."""
    if refuse:
        if not transition(db, job.id, ["queued"], "failed", model=model, finished_at=now(),
                          error=why, dispatched_at=None):
            return None
        db.refresh(job)
        return "failed"
    db.execute(update(model).where(model.id == job.id, model.status == "queued")
               .values(dispatched_at=None).execution_options(synchronize_session=False))
    return "waiting"
