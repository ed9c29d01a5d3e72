"""The start of a run, shared by the training and the caption runner: a queued job moves to
running only under its org's limits, checked and recorded as one step under the org's lock
(app/integrations/quotas.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

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
    claimed meanwhile, or is over a limit (then ``not_started(db, job, decision, why)``)."""
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
        not_started(db, job, decision, why)
        return None
    if not transition(db, job_id, ["queued"], "running", model=model, worker_id=worker_id,
                      heartbeat_at=now(), started_at=job.started_at or now(),
                      attempts=model.attempts + 1, dispatched_at=None, **values(job)):
        return None  # cancelled meanwhile, or a duplicate message: nothing to do
    db.refresh(job)
    return job
