"""Finalize (``POST /v1/jobs/{job_id}/finalize``) and the model library (``/v1/models``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.core import audit, idempotency
from app.core.deps import DB, reads_only
from app.core.json_response import plain_json
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import org_rows, path_object
from app.core.warmup import warm_up_step
from app.identity.principal import Principal, no_one, require
from app.library import service
from app.library.finalize import finalize
from app.library.schemas import (
    Architecture,
    FinalizeIn,
    FinalizeOut,
    ModelOut,
    ModelPatch,
    ModelType,
)
from app.library.usage import UsageOut, usage_for
from app.models import Model, TrainingJob
from app.storage.base import Storage
from app.storage.factory import STORAGE, get_storage

router = APIRouter(prefix="/v1", tags=["library"])

# Path objects load before the body is validated, so another org's id is a 404 whatever is sent.
_job = path_object(TrainingJob, "job_id", what="Job", scope="jobs:write")
model_read = path_object(Model, "model_id", what="Model", scope="models:read")
model_write = path_object(Model, "model_id", what="Model", scope="models:write")


@router.post(
    "/jobs/{job_id}/finalize", response_model=FinalizeOut, operation_id="finalize_job",
    responses={409: {"description": "Wrong job state, no checkpoint at a chosen step, or a "
                                   "chosen name already in the library."}},
)
def finalize_job(
    job_id: str,
    body: FinalizeIn,
    request: Request,
    job: TrainingJob = Depends(_job),
    principal: Principal = Depends(require("models:write")),  # creates models: both scopes
    key: str | None = Depends(idempotency.idempotency_key),
    db: Session = DB,
    storage: Storage = STORAGE,
) -> Any:
    """Turn the chosen checkpoint steps into library models and delete everything else the
    job stored. Honours ``Idempotency-Key``."""
    idem = idempotency.begin(
        db, principal.org_id, f"POST /v1/jobs/{job.id}/finalize", key, body.model_dump()
    )
    if idem.replay is not None:
        return idem.replay
    models = finalize(db, job, body, storage)
    out = FinalizeOut(models=[service.render(m, storage) for m in models])
    audit.record(
        db, principal, "job.finalized", request=request, target_type="job", target_id=job.id,
        details={"steps": body.steps, "model_ids": [m.id for m in models]},
    )
    idem.save(200, out.model_dump(mode="json"))
    return out


@router.get("/models", response_model=Page[ModelOut], operation_id="list_models")
@reads_only
def list_models(
    type: ModelType | None = Query(None, description="Only models of this type."),
    architecture: Architecture | None = Query(None, description="Only sd15 or sdxl models."),
    q: str | None = Query(None, max_length=200, description="Search in model names."),
    page: PageParams = PAGE,
    principal: Principal = Depends(require("models:read")),
    db: Session = DB,
    storage: Storage = STORAGE,
) -> Response:
    stmt = service.filtered(org_rows(Model), type=type, architecture=architecture, q=q)
    return plain_json(paginate(db, stmt, Model.id, page,
                               lambda m: service.model_fields(m, storage), rows=True,
                               bind={"org_id": principal.org_id}))


warm_up_step(lambda db: list_models(type=None, architecture=None, q=None, page=PageParams(),
                                    principal=no_one(), db=db, storage=get_storage()))


@router.get("/models/{model_id}", response_model=ModelOut, operation_id="get_model")
@reads_only
def get_model(
    model_id: str, model: Model = Depends(model_read), storage: Storage = STORAGE
) -> ModelOut:
    return service.render(model, storage)


@router.patch(
    "/models/{model_id}", response_model=ModelOut, operation_id="rename_model",
    responses={409: {"description": "Another model of the organization has this name."}},
)
def rename_model(
    model_id: str,
    body: ModelPatch,
    request: Request,
    model: Model = Depends(model_write),
    principal: Principal = Depends(require("models:write")),
    db: Session = DB,
    storage: Storage = STORAGE,
) -> ModelOut:
    old = model.name
    service.rename(db, model, body.name)
    audit.record(db, principal, "model.renamed", request=request, target_type="model",
                 target_id=model.id, details={"from": old, "to": body.name})
    return service.render(model, storage)


@router.delete("/models/{model_id}", status_code=204, operation_id="delete_model")
def delete_model(
    model_id: str,
    request: Request,
    model: Model = Depends(model_write),
    principal: Principal = Depends(require("models:write")),
    db: Session = DB,
    storage: Storage = STORAGE,
) -> Response:
    audit.record(db, principal, "model.deleted", request=request, target_type="model",
                 target_id=model.id, details={"name": model.name, "bytes": model.bytes})
    service.delete_model(db, model, storage)
    return Response(status_code=204)


@router.get(
    "/models/{model_id}/download", status_code=302, operation_id="download_model",
    response_class=RedirectResponse,
    responses={302: {"description": "Redirect to a short-lived URL of the file."}},
)
def download_model(
    model_id: str,
    model: Model = Depends(model_read),
    file: str | None = Query(None, description="Which file, when the model has several "
                             "(e.g. a pivotal model's LoRA and embedding)."),
    storage: Storage = STORAGE,
) -> RedirectResponse:
    return RedirectResponse(service.download_url(model, storage, file), status_code=302)



@router.get("/models/{model_id}/usage", response_model=UsageOut, operation_id="model_usage")
def model_usage(
    model_id: str, model: Model = Depends(model_read), storage: Storage = STORAGE
) -> UsageOut:
    """"Use this model": the trigger to type and the steps for ComfyUI, A1111, InvokeAI and
    diffusers (see docs/formats.md)."""
    urls = {f.name: f.url for f in service.render(model, storage).files}
    return usage_for(model, urls)
