"""Creating, cancelling and retrying jobs; reading what they produced.

Creating (and retrying) a job takes the org's lock before it reads the dataset, and deleting a
dataset takes the same lock before it checks for jobs using it: job-create racing
dataset-delete always ends with one clean winner (app/integrations/quotas.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, aliased

from app.core.after_commit import defer
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.locking import lock_org
from app.core.tenancy import get_scoped
from app.identity.principal import Principal
from app.integrations.quotas import check_job_size
from app.jobs import dispatch
from app.jobs.config_resolution import resolve_config
from app.jobs.notify import job_status_changed
from app.jobs.schemas import JobCreate
from app.jobs.state import ACTIVE, now, transition
from app.models import BaseModel, Dataset, DatasetItem, TrainingJob

CONCEPT_TYPES = ("lora", "dora", "pivotal")


def visible_base_models(db: Session, principal: Principal) -> list[BaseModel]:
    stmt = select(BaseModel).where(
        (BaseModel.org_id.is_(None)) | (BaseModel.org_id == principal.org_id)
    ).order_by(BaseModel.key)
    return list(db.scalars(stmt))


def _base_model(db: Session, principal: Principal, key: str) -> BaseModel:
    for row in visible_base_models(db, principal):
        if row.key == key:
            return row
    raise Unprocessable(f"Base model '{key}' does not exist; see GET /v1/base-models.",
                        errors=[{"loc": ["body", "base_model"], "msg": "unknown base model"}])


def _snapshot(db: Session, principal: Principal, body: JobCreate) -> list[dict[str, Any]]:
    try:
        get_scoped(db, Dataset, body.dataset_id, principal, what="Dataset")
    except NotFound:
        raise Unprocessable(f"Dataset '{body.dataset_id}' does not exist.",
                            errors=[{"loc": ["body", "dataset_id"], "msg": "unknown dataset"}]
                            ) from None
    items = list(db.scalars(
        select(DatasetItem).where(DatasetItem.dataset_id == body.dataset_id,
                                  DatasetItem.org_id == principal.org_id)
        .order_by(DatasetItem.id)))
    if not items:
        raise Unprocessable("The dataset has no images yet; upload some first.",
                            errors=[{"loc": ["body", "dataset_id"], "msg": "empty dataset"}])
    if body.type in CONCEPT_TYPES and not body.caption_prefix:
        missing = [i.filename for i in items if not (i.caption or "").strip()]
        if missing:
            raise Unprocessable(
                f"{len(missing)} of {len(items)} images have no caption "
                f"(e.g. {', '.join(missing[:3])}). Caption every image or set a caption_prefix "
                "(trigger word).",
                errors=[{"loc": ["body", "caption_prefix"], "msg": "captions missing"}])
    return [{"id": i.id, "filename": i.filename, "storage_key": i.storage_key,
             "sha256": i.sha256, "caption": i.caption, "content_type": i.content_type}
            for i in items]


def create_job(db: Session, principal: Principal, body: JobCreate) -> TrainingJob:
    base = _base_model(db, principal, body.base_model)
    config = resolve_config(body, base.architecture, base.resolution)
    check_job_size(principal.organization, config)
    lock_org(db, principal.org_id)  # the snapshot and the insert are one step for the org
    snapshot = _snapshot(db, principal, body)
    job = TrainingJob(
        org_id=principal.org_id, dataset_id=body.dataset_id, created_by=principal.label,
        name=body.name, type=body.type, architecture=base.architecture, base_model=base.key,
        template=body.template, config=config, dataset_snapshot=snapshot, status="queued",
        total_steps=config["max_train_steps"],
    )
    db.add(job)
    db.flush()
    defer(db, dispatch.dispatch_soon)
    return job


def cancel_job(db: Session, job: TrainingJob) -> None:
    """A 200 means the job ends ``cancelled``: a running job goes to ``cancelling`` and the
    worker's finish, a conditional update, can then only end it ``cancelled``. A job that
    finished first answers 409 naming its final state (app/jobs/state.py)."""
    if transition(db, job.id, ["queued"], "cancelled", finished_at=now()):
        db.refresh(job)
        job_status_changed(db, job, "cancelled")
        return
    if transition(db, job.id, ["running"], "cancelling"):
        return  # the worker sees it within a step and ends the run
    db.refresh(job)
    if job.status not in ("cancelling", "cancelled"):
        raise Conflict(f"Job already {job.status}; only queued or running jobs can be "
                       "cancelled.", extra={"job_status": job.status})


def retry_job(db: Session, principal: Principal, job: TrainingJob) -> TrainingJob:
    if job.status not in ("failed", "cancelled"):
        raise Conflict(f"Job is {job.status}; only failed or cancelled jobs can be retried.")
    lock_org(db, job.org_id)  # as create: a dataset delete cannot slip in between
    ids = [entry["id"] for entry in job.dataset_snapshot]
    present = set(db.scalars(select(DatasetItem.id).where(DatasetItem.org_id == job.org_id,
                                                          DatasetItem.id.in_(ids))))
    if len(present) < len(set(ids)):
        raise Conflict(f"{len(set(ids)) - len(present)} of the job's images were deleted "
                       "since it ran; start a new job on the current dataset instead.")
    new = TrainingJob(
        org_id=job.org_id, dataset_id=job.dataset_id, created_by=principal.label,
        name=job.name, type=job.type, architecture=job.architecture, base_model=job.base_model,
        template=job.template, config=job.config, dataset_snapshot=job.dataset_snapshot,
        status="queued", total_steps=job.total_steps, retry_of_id=job.id,
        max_attempts=job.max_attempts,
    )
    db.add(new)
    db.flush()
    defer(db, dispatch.dispatch_soon)
    return new


def _queue_positions_stmt() -> Any:
    earlier = aliased(TrainingJob)
    ahead = (select(func.count()).select_from(earlier)
             .where(earlier.status == "queued", earlier.id < TrainingJob.id)
             .correlate(TrainingJob).scalar_subquery())
    return select(TrainingJob.id, ahead).where(
        TrainingJob.id.in_(bindparam("ids", expanding=True)))


# Built once: aliasing the jobs table re-creates a proxy of each of its columns, which cost
# more than the query itself on every page of jobs.
_QUEUE_POSITIONS = _queue_positions_stmt()


def queue_positions(db: Session, jobs: Sequence[Any]) -> dict[str, int]:
    """Position in the global queue (1 = next), counting queued jobs created earlier.
    One query for a whole page (each count is a range of the (status, id) index); ``jobs``
    are objects or rows with ``id`` and ``status``."""
    queued = [job.id for job in jobs if job.status == "queued"]
    if not queued:
        return {}
    rows = db.connection().execute(_QUEUE_POSITIONS, {"ids": queued})  # rows: no ORM needed
    return {job_id: int(n or 0) + 1 for job_id, n in rows}


def active_job_uses(db: Session, org_id: str, dataset_id: str) -> bool:
    return db.scalar(select(func.count()).select_from(TrainingJob).where(
        TrainingJob.org_id == org_id, TrainingJob.dataset_id == dataset_id,
        TrainingJob.status.in_(ACTIVE))) > 0  # type: ignore[operator]
