from __future__ import annotations

from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import audit, idempotency, stream_limits
from app.core.deps import DB, reads_only
from app.core.errors import NotFound
from app.core.json_response import plain_json
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import get_scoped, path_object
from app.core.warmup import NO_ID, warm_up_step
from app.identity.principal import Principal, no_one, require
from app.integrations import quotas
from app.jobs import events, service
from app.jobs.deletion import router as deletion_router
from app.jobs.rendering import JOB_ROWS, JOB_ROWS_OF_STATUS, checkpoint_fields, job_fields, job_out
from app.jobs.schemas import (
    BaseModelOut,
    CheckpointOut,
    JobCreate,
    JobOut,
    JobStatus,
    MetricsOut,
    TemplateOut,
)
from app.models import JobLogLine, JobMetric, TrainingJob
from app.storage.base import Storage
from app.storage.factory import STORAGE, get_storage
from worker.training.templates import TEMPLATES

router = APIRouter(prefix="/v1", tags=["training"])
_job = path_object(TrainingJob, "job_id", what="Job", scope="jobs:read")
_job_w = path_object(TrainingJob, "job_id", what="Job", scope="jobs:write")
router.include_router(deletion_router)  # DELETE /v1/jobs/{id} (app/jobs/deletion.py)


@router.get("/base-models", response_model=list[BaseModelOut], operation_id="list_base_models")
def list_base_models(db: Session = DB,
                     principal: Principal = Depends(require("jobs:read"))) -> list[BaseModelOut]:
    return [BaseModelOut(key=b.key, name=b.name, architecture=b.architecture,  # type: ignore[arg-type]
                         resolution=b.resolution)
            for b in service.visible_base_models(db, principal)]


@router.get("/training-templates", response_model=list[TemplateOut],
            operation_id="list_training_templates")
def list_templates(_: Principal = Depends(require("jobs:read"))) -> list[TemplateOut]:
    return [TemplateOut(key=t.key, name=t.name, type=t.type, architecture=t.architecture,
                        description=t.description, defaults=t.defaults) for t in TEMPLATES]


@router.post("/jobs", response_model=JobOut, status_code=201, operation_id="create_job",
             responses={422: {"description": "Invalid job"}, 409: {"description": "Conflict"},
                        429: {"description": "Monthly GPU quota used up"}})
def create_job(body: JobCreate, request: Request, db: Session = DB,
               principal: Principal = Depends(require("jobs:write")),
               key: str | None = Depends(idempotency.idempotency_key)) -> Any:
    """Validate, freeze the dataset and resolved config, and queue. Honours Idempotency-Key."""
    idem = idempotency.begin(db, principal.org_id, "POST /v1/jobs", key,
                             body.model_dump(mode="json"))
    if idem.replay is not None:
        return idem.replay
    quotas.check_can_start_job(db, principal.organization)
    job = service.create_job(db, principal, body)
    audit.record(db, principal, "job.create", request=request, target_type="job",
                 target_id=job.id, details={"name": job.name, "type": job.type})
    out = job_out(job, service.queue_positions(db, [job]).get(job.id))
    idem.save(201, out.model_dump(mode="json"))
    return out


@router.get("/jobs", response_model=Page[JobOut], operation_id="list_jobs")
@reads_only
def list_jobs(status: JobStatus | None = Query(None), page: PageParams = PAGE,
              db: Session = DB,
              principal: Principal = Depends(require("jobs:read"))) -> Response:
    result = paginate(db, JOB_ROWS_OF_STATUS if status else JOB_ROWS, TrainingJob.id, page,
                      lambda j: j, rows=True, bind={"org_id": principal.org_id, "status": status})
    positions = service.queue_positions(db, result["items"])
    result["items"] = [job_fields(j, positions.get(j.id)) for j in result["items"]]
    return plain_json(result)


@router.get("/jobs/{job_id}", response_model=JobOut, operation_id="get_job")
@reads_only
def get_job(job_id: str, db: Session = DB,
            job: TrainingJob = Depends(_job)) -> JobOut:
    return job_out(job, service.queue_positions(db, [job]).get(job.id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, operation_id="cancel_job",
             responses={409: {"description": "Job already ended"}})
def cancel_job(job_id: str, request: Request, db: Session = DB,
               principal: Principal = Depends(require("jobs:write")),
               job: TrainingJob = Depends(_job_w)) -> JobOut:
    service.cancel_job(db, job)
    audit.record(db, principal, "job.cancel", request=request, target_type="job",
                 target_id=job.id)
    db.refresh(job)
    return job_out(job)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, status_code=201,
             operation_id="retry_job", responses={409: {"description": "Job not retryable"}})
def retry_job(job_id: str, request: Request, db: Session = DB,
              principal: Principal = Depends(require("jobs:write")),
              job: TrainingJob = Depends(_job_w)) -> JobOut:
    new = service.retry_job(db, principal, job)
    audit.record(db, principal, "job.retry", request=request, target_type="job",
                 target_id=new.id, details={"retry_of": job.id})
    return job_out(new, service.queue_positions(db, [new]).get(new.id))


@router.get("/jobs/{job_id}/checkpoints", response_model=list[CheckpointOut],
            operation_id="list_checkpoints")
@reads_only
def list_checkpoints(job_id: str, db: Session = DB,
                     storage: Storage = STORAGE,
                     job: TrainingJob = Depends(_job)) -> Response:
    return plain_json(checkpoint_fields(db, storage, job))


@warm_up_step
def _warm_up(db: Session) -> None:
    """The busiest routes' queries (a first and a later page, a job, its checkpoints) for an
    org and a job that do not exist."""
    nobody = no_one()
    for cursor in (None, NO_ID):
        list_jobs(status=None, page=PageParams(cursor=cursor), db=db, principal=nobody)
    with suppress(NotFound):
        get_scoped(db, TrainingJob, NO_ID, nobody)
    checkpoint_fields(db, get_storage(), TrainingJob(id=NO_ID, org_id=NO_ID))


@router.get("/jobs/{job_id}/metrics", response_model=MetricsOut, operation_id="get_job_metrics")
def get_metrics(job_id: str, db: Session = DB,
                job: TrainingJob = Depends(_job)) -> MetricsOut:
    rows = db.scalars(select(JobMetric).where(JobMetric.job_id == job.id)
                      .order_by(JobMetric.step)).all()
    return MetricsOut(steps=[r.step for r in rows], loss=[r.loss for r in rows],
                      lr=[r.lr for r in rows])


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse, operation_id="get_job_logs",
            responses={200: {"content": {"text/plain": {}}}})
def get_logs(job_id: str, db: Session = DB,
             job: TrainingJob = Depends(_job)) -> str:
    lines = db.scalars(select(JobLogLine).where(JobLogLine.job_id == job.id)
                       .order_by(JobLogLine.id)).all()
    return "".join(f"{line.created_at:%Y-%m-%d %H:%M:%S} {line.message}\n" for line in lines)


@router.get("/jobs/{job_id}/events", operation_id="stream_job_events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       429: {"description": "Too many open streams for this key/user or org"}})
def stream_events(job_id: str, job: TrainingJob = Depends(_job),
                  principal: Principal = Depends(require("jobs:read"))) -> StreamingResponse:
    # The request's session commits and closes when this returns, before the body streams; the
    # stream reads in short sessions of its own and holds a slot of the per-key/org stream cap.
    actor = ("key", principal.api_key.id) if principal.api_key else ("user", principal.actor_id)
    lease = stream_limits.acquire(actor, principal.org_id)
    return StreamingResponse(events.stream(job.id, lease=lease), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
