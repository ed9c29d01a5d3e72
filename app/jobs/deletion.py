"""`DELETE /v1/jobs/{id}`: remove an ended job, its logs, metrics, checkpoints and validation
images (rows now, files once that has committed). Models already finalized from it stay in the
library (their files live under the model's own prefix; their `job_id` becomes null).

GPU time is billed per calendar month as the sum over the month's jobs
(app/integrations/quotas.py), so deleting a job must not give its seconds back: the audit event
carries them (`gpu_seconds`, `job_created_at`) and ``quotas.deleted_jobs_gpu_seconds`` adds
them in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.core import audit
from app.core.after_commit import defer
from app.core.deps import DB
from app.core.errors import Conflict
from app.core.tenancy import path_object
from app.identity.principal import Principal, require
from app.integrations.quotas import DELETED_JOB_ACTION
from app.jobs.state import TERMINAL
from app.models import TrainingJob

router = APIRouter()
_job_w = path_object(TrainingJob, "job_id", what="Job", scope="jobs:write")


@router.delete("/jobs/{job_id}", status_code=204, operation_id="delete_job",
               responses={404: {"description": "No such job in this organization"},
                          409: {"description": "The job is still queued or running"}})
def delete_job(job_id: str, request: Request, db: Session = DB,
               principal: Principal = Depends(require("jobs:write")),
               job: TrainingJob = Depends(_job_w)) -> Response:
    org_id = job.org_id
    details = {"name": job.name, "status": job.status,
               "gpu_seconds": float(job.gpu_seconds or 0.0),
               "job_created_at": _utc(job.created_at).isoformat()}
    # One conditional DELETE: a job that a worker (re)started meanwhile is not removed.
    stmt = delete(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status.in_(TERMINAL))
    gone = db.execute(stmt.execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if not gone:
        raise Conflict("Only a job that has ended can be deleted; cancel it first.")
    db.expunge(job)  # its row is gone; the session must not try to flush it
    audit.record(db, principal, DELETED_JOB_ACTION, request=request, target_type="job",
                 target_id=job_id, details=details)
    defer(db, lambda: _remove_files(org_id, job_id))
    return Response(status_code=204)


def _remove_files(org_id: str, job_id: str) -> None:
    # The finalize cleanup deletes everything under a job's prefix once no row of that job
    # refers to it; with the job gone, that is all of it. Queued to a worker, or run inline.
    from app.library.cleanup import send_cleanup

    send_cleanup(org_id, job_id)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
