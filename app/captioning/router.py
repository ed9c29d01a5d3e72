"""Captioning API: captioners, caption jobs (on the GPU queue), and suggestion review.

Routes with an object id load it through ``path_object`` (app/core/tenancy.py): another org's
dataset or caption job is a 404 before the body is looked at.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.captioning import review, service
from app.captioning.events import read_caption_snapshot
from app.captioning.schemas import (
    AcceptRequest,
    AcceptResult,
    CaptionerList,
    CaptionerOut,
    CaptionJobCreate,
    CaptionJobOut,
    DiscardRequest,
    DiscardResult,
    SuggestionList,
    SuggestionRow,
)
from app.core import audit, stream_limits
from app.core.deps import DB
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import path_object, scoped
from app.datasets import service as datasets
from app.datasets.deps import can_read, can_write, dataset_r, dataset_w
from app.datasets.views import item_out, suggestion_out
from app.identity.principal import Principal
from app.integrations import quotas
from app.jobs import events
from app.models import CaptionJob, Dataset
from app.storage.base import Storage
from app.storage.factory import STORAGE

router = APIRouter(prefix="/v1", tags=["captioning"])
# The path parameter is `caption_job_id` (the URL is /v1/caption-jobs/{id}): `job_id` names
# training jobs throughout the API.
_job_r = path_object(CaptionJob, "caption_job_id", what="Caption job", scope="datasets:read")
_job_w = path_object(CaptionJob, "caption_job_id", what="Caption job", scope="datasets:write")


@router.get("/captioners", response_model=CaptionerList, operation_id="list_captioners")
def list_captioners(db: Session = DB, _: Principal = Depends(can_read)) -> CaptionerList:
    return CaptionerList(items=[CaptionerOut(key=c.key, name=c.name, kind=c.kind)  # type: ignore[arg-type]
                                for c in service.captioners(db)])


@router.post("/datasets/{dataset_id}/caption-jobs", response_model=CaptionJobOut,
             status_code=201, operation_id="create_caption_job",
             responses={409: {"description": "A caption job is already working on the dataset"},
                        422: {"description": "Unknown captioner, style mismatch, nothing to "
                                             "caption"},
                        429: {"description": "Monthly GPU quota used up"}})
def create_caption_job(dataset_id: str, body: CaptionJobCreate, request: Request,
                       db: Session = DB, dataset: Dataset = Depends(dataset_w),
                       principal: Principal = Depends(can_write)) -> CaptionJobOut:
    """Freeze the items to caption (mode) and queue the job on the GPU queue."""
    quotas.check_can_start_job(db, principal.organization)
    job = service.create_job(db, principal, dataset, body)
    audit.record(db, principal, "caption_job.create", request=request,
                 target_type="caption_job", target_id=job.id,
                 details={"dataset_id": dataset.id, "captioner": job.captioner,
                          "mode": job.mode, "items": job.progress_total})
    return service.job_out(job)


@router.get("/datasets/{dataset_id}/caption-jobs", response_model=Page[CaptionJobOut],
            operation_id="list_caption_jobs")
def list_caption_jobs(dataset_id: str, page: PageParams = PAGE, db: Session = DB,
                      dataset: Dataset = Depends(dataset_r),
                      principal: Principal = Depends(can_read)) -> dict:
    stmt = scoped(CaptionJob, principal).where(CaptionJob.dataset_id == dataset.id)
    return paginate(db, stmt, CaptionJob.id, page, service.job_out)


@router.get("/caption-jobs/{caption_job_id}", response_model=CaptionJobOut,
            operation_id="get_caption_job")
def get_caption_job(caption_job_id: str, job: CaptionJob = Depends(_job_r)) -> CaptionJobOut:
    return service.job_out(job)


@router.post("/caption-jobs/{caption_job_id}/cancel", response_model=CaptionJobOut,
             operation_id="cancel_caption_job",
             responses={409: {"description": "Caption job already ended"}})
def cancel_caption_job(caption_job_id: str, request: Request, db: Session = DB,
                       job: CaptionJob = Depends(_job_w),
                       principal: Principal = Depends(can_write)) -> CaptionJobOut:
    service.cancel_job(db, job)
    audit.record(db, principal, "caption_job.cancel", request=request,
                 target_type="caption_job", target_id=job.id)
    db.refresh(job)
    return service.job_out(job)


@router.get("/caption-jobs/{caption_job_id}/events", operation_id="stream_caption_job_events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       429: {"description": "Too many open streams for this key/user or org"}})
def stream_caption_job_events(caption_job_id: str, job: CaptionJob = Depends(_job_r),
                              principal: Principal = Depends(can_read)) -> StreamingResponse:
    # As training jobs' streams (app/jobs/router.py): short sessions of its own, one slot.
    actor = ("key", principal.api_key.id) if principal.api_key else ("user", principal.actor_id)
    lease = stream_limits.acquire(actor, principal.org_id)
    return StreamingResponse(
        events.stream(job.id, lease=lease, reader=read_caption_snapshot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/datasets/{dataset_id}/suggestions", response_model=SuggestionList,
            operation_id="list_suggestions")
def list_suggestions(dataset_id: str, db: Session = DB,
                     dataset: Dataset = Depends(dataset_r)) -> SuggestionList:
    return SuggestionList(items=[
        SuggestionRow(item_id=i.id, caption=i.caption,
                      suggestion=suggestion_out(i.suggestion))  # type: ignore[arg-type]
        for i in review.suggested_items(db, dataset)])


@router.post("/datasets/{dataset_id}/suggestions/accept", response_model=AcceptResult,
             operation_id="accept_suggestions",
             responses={422: {"description": "An item is not in the dataset or has no "
                                             "suggestion (nothing applied)"}})
def accept_suggestions(dataset_id: str, body: AcceptRequest, request: Request,
                       db: Session = DB, dataset: Dataset = Depends(dataset_w),
                       principal: Principal = Depends(can_write),
                       storage: Storage = STORAGE) -> AcceptResult:
    items = review.accept(db, dataset, body.items, body.prefix)
    if items:
        datasets.touch(dataset)
    audit.record(db, principal, "dataset.suggestions.accept", request=request,
                 target_type="dataset", target_id=dataset.id,
                 details={"accepted": len(items), "all": body.all,
                          "edited": sum(1 for e in body.items or [] if e.caption is not None)})
    return AcceptResult(accepted=len(items), items=[item_out(storage, i) for i in items])


@router.post("/datasets/{dataset_id}/suggestions/discard", response_model=DiscardResult,
             operation_id="discard_suggestions",
             responses={422: {"description": "An item is not in the dataset (nothing "
                                             "discarded)"}})
def discard_suggestions(dataset_id: str, body: DiscardRequest, request: Request,
                        db: Session = DB, dataset: Dataset = Depends(dataset_w),
                        principal: Principal = Depends(can_write)) -> DiscardResult:
    count = review.discard(db, dataset, body.item_ids)
    audit.record(db, principal, "dataset.suggestions.discard", request=request,
                 target_type="dataset", target_id=dataset.id,
                 details={"discarded": count, "all": body.all})
    return DiscardResult(discarded=count)
