"""Captioners and caption jobs: create (freezing the items to caption), cancel, render.

A caption job runs on the same GPU queue as training (app/jobs/dispatch.py), with the same
state machine (app/jobs/state.py, ``model=CaptionJob``), claim limits and reconciler.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.captioning.notify import caption_job_status_changed
from app.captioning.review import clean_prefix
from app.captioning.schemas import CaptionJobCreate, CaptionJobOut, CaptionProgress
from app.core.after_commit import defer
from app.core.errors import Conflict, Unprocessable
from app.core.locking import lock_org
from app.identity.principal import Principal
from app.jobs import dispatch
from app.jobs.state import ACTIVE, now, transition
from app.models import Captioner, CaptionJob, Dataset, DatasetItem


def captioners(db: Session) -> list[Captioner]:
    return list(db.scalars(select(Captioner).order_by(Captioner.key)))


def _captioner(db: Session, key: str) -> Captioner:
    row = db.scalar(select(Captioner).where(Captioner.key == key))
    if row is None:
        known = ", ".join(c.key for c in captioners(db)) or "none registered"
        raise Unprocessable(f"Captioner '{key[:100]}' does not exist (known: {known}); see "
                            "GET /v1/captioners.",
                            errors=[{"loc": ["body", "captioner"], "msg": "unknown captioner"}])
    return row


def _check_style(db: Session, captioner: Captioner, style: str | None) -> str:
    if style is None or style == captioner.kind:
        return captioner.kind
    fitting = [c.key for c in captioners(db) if c.kind == style]
    hint = (f"captioners that write {style}: {', '.join(fitting)}" if fitting
            else f"no registered captioner writes {style}")
    raise Unprocessable(
        f"Captioner '{captioner.key}' writes {captioner.kind}, not {style} ({hint}).",
        errors=[{"loc": ["body", "style"], "msg": "style does not match the captioner"}])


def _items_to_caption(db: Session, dataset: Dataset, mode: str) -> list[str]:
    rows = db.execute(select(DatasetItem.id, DatasetItem.caption).where(
        DatasetItem.org_id == dataset.org_id, DatasetItem.dataset_id == dataset.id)
        .order_by(DatasetItem.id)).all()
    if not rows:
        raise Unprocessable("The dataset has no images yet; upload some first.",
                            errors=[{"loc": ["path", "dataset_id"], "msg": "empty dataset"}])
    ids = [item_id for item_id, caption in rows if mode == "all" or caption is None]
    if not ids:
        raise Unprocessable(
            f"All {len(rows)} images already have a caption; use mode 'all' to get "
            "suggestions for them too (captions change only when you accept).",
            errors=[{"loc": ["body", "mode"], "msg": "nothing uncaptioned"}])
    return ids


def create_job(db: Session, principal: Principal, dataset: Dataset,
               body: CaptionJobCreate) -> CaptionJob:
    captioner = _captioner(db, body.captioner)
    style = _check_style(db, captioner, body.style)
    lock_org(db, principal.org_id)  # the check for a running job and the insert are one step
    running = db.scalar(select(CaptionJob.id).where(
        CaptionJob.org_id == principal.org_id, CaptionJob.dataset_id == dataset.id,
        CaptionJob.status.in_(ACTIVE)))
    if running is not None:
        # Two jobs on one dataset would overwrite each other's suggestions.
        raise Conflict(f"Caption job {running} is still working on this dataset; cancel it or "
                       "wait for it to end first.", extra={"caption_job_id": running})
    item_ids = _items_to_caption(db, dataset, body.mode)
    job = CaptionJob(
        org_id=principal.org_id, dataset_id=dataset.id, created_by=principal.label,
        captioner=captioner.key, mode=body.mode, style=style, prefix=clean_prefix(body.prefix),
        max_length=body.max_length, item_ids=item_ids, status="queued",
        progress_total=len(item_ids),
    )
    db.add(job)
    db.flush()
    defer(db, dispatch.dispatch_soon)
    return job


def cancel_job(db: Session, job: CaptionJob) -> None:
    """As training jobs (app/jobs/service.py ``cancel_job``): a 200 means it ends cancelled;
    the worker checks between batches of images."""
    if transition(db, job.id, ["queued"], "cancelled", model=CaptionJob, finished_at=now()):
        db.refresh(job)
        caption_job_status_changed(db, job)
        return
    if transition(db, job.id, ["running"], "cancelling", model=CaptionJob):
        caption_job_status_changed(db, job)
        return
    db.refresh(job)
    if job.status not in ("cancelling", "cancelled"):
        raise Conflict(f"Caption job already {job.status}; only queued or running jobs can be "
                       "cancelled.", extra={"job_status": job.status})


def job_out(job: CaptionJob) -> CaptionJobOut:
    return CaptionJobOut(
        id=job.id, dataset_id=job.dataset_id, captioner=job.captioner,
        mode=job.mode, style=job.style, prefix=job.prefix,  # type: ignore[arg-type]
        max_length=job.max_length, status=job.status,  # type: ignore[arg-type]
        progress=CaptionProgress(done=job.progress_done, total=job.progress_total),
        gpu_seconds=round(job.gpu_seconds or 0.0, 2), error=job.error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
    )
