"""Datasets API: CRUD, items and uploads here; captions and export in ``routes_captions``.

Every route with an object id in its path loads that object through ``deps`` (``path_object``)
so another org's dataset or item is a 404 before the request body is even looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from app.core import audit
from app.core.db import end_reads
from app.core.deps import DB, awaited_without_db, reads_only
from app.core.errors import PayloadTooLarge, Unprocessable
from app.core.json_response import plain_json
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import org_rows
from app.core.warmup import warm_up_step
from app.datasets import captions, limits, repository, service, uploads, views
from app.datasets.deps import can_read, can_write, dataset_r, dataset_w, in_dataset, item_r, item_w
from app.datasets.images import file_size
from app.datasets.ingest import Ingest, ingest_uploads
from app.datasets.routes_captions import router as captions_router
from app.datasets.schemas import (
    BulkCaptionEdit,
    BulkEditResult,
    CaptionUpdate,
    CompleteRequest,
    DatasetCreate,
    DatasetOut,
    DatasetUpdate,
    ItemOut,
    PresignRequest,
    PresignResponse,
    UploadResult,
)
from app.identity.principal import Principal, no_one
from app.integrations import quotas
from app.models import Dataset, DatasetItem
from app.storage.base import Storage
from app.storage.factory import STORAGE

router = APIRouter(prefix="/v1", tags=["datasets"])
router.include_router(captions_router)

# --- datasets ---------------------------------------------------------------------------------

@router.post("/datasets", response_model=DatasetOut, status_code=201,
             operation_id="create_dataset")
def create_dataset(body: DatasetCreate, request: Request, db: Session = DB,
                   principal: Principal = Depends(can_write)) -> DatasetOut:
    dataset = service.create_dataset(db, principal, body.name, body.description)
    audit.record(db, principal, "dataset.create", request=request, target_type="dataset",
                 target_id=dataset.id, details={"name": dataset.name})
    return views.dataset_out(db, dataset)


@router.get("/datasets", response_model=Page[DatasetOut], operation_id="list_datasets")
@reads_only
def list_datasets(page: PageParams = PAGE, db: Session = DB,
                  principal: Principal = Depends(can_read)) -> Response:
    result = paginate(db, org_rows(Dataset), Dataset.id, page, lambda d: d, rows=True,
                      bind={"org_id": principal.org_id})
    result["items"] = views.dataset_fields(db, result["items"])
    return plain_json(result)


warm_up_step(lambda db: list_datasets(page=PageParams(), db=db, principal=no_one()))


@router.get("/datasets/{dataset_id}", response_model=DatasetOut, operation_id="get_dataset")
@reads_only
def get_dataset(dataset_id: str, db: Session = DB,
                dataset: Dataset = Depends(dataset_r)) -> DatasetOut:
    return views.dataset_out(db, dataset)


@router.patch("/datasets/{dataset_id}", response_model=DatasetOut,
              operation_id="update_dataset")
def update_dataset(dataset_id: str, body: DatasetUpdate, request: Request,
                   db: Session = DB, dataset: Dataset = Depends(dataset_w),
                   principal: Principal = Depends(can_write)) -> DatasetOut:
    changes = body.model_dump(exclude_unset=True)
    service.update_dataset(dataset, changes)
    audit.record(db, principal, "dataset.update", request=request, target_type="dataset",
                 target_id=dataset.id, details={"fields": sorted(changes)})
    return views.dataset_out(db, dataset)


@router.delete("/datasets/{dataset_id}", status_code=204, operation_id="delete_dataset")
def delete_dataset(dataset_id: str, request: Request, db: Session = DB,
                   dataset: Dataset = Depends(dataset_w),
                   principal: Principal = Depends(can_write),
                   storage: Storage = STORAGE) -> Response:
    count = service.delete_dataset(db, storage, dataset)
    audit.record(db, principal, "dataset.delete", request=request, target_type="dataset",
                 target_id=dataset.id, details={"name": dataset.name, "items": count})
    return Response(status_code=204)


# --- multipart upload -------------------------------------------------------------------------

def _precheck(request: Request, db: Session = DB,
              dataset: Dataset = Depends(dataset_w),
              principal: Principal = Depends(can_write)) -> None:
    """Refuse from Content-Length alone, before a byte of the body is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        if int(declared) > limits.MAX_REQUEST_BYTES:
            raise PayloadTooLarge(
                f"The request is {declared} bytes; the limit is {limits.MAX_REQUEST_BYTES}."
            )
        needed = max(int(declared) - limits.MULTIPART_SLACK_BYTES, 0)
        quotas.check_storage(db, principal.organization, needed)
    end_reads(db)  # nothing held while the body (maybe a large zip) arrives


async def _form_files(request: Request, _: None = Depends(_precheck)
                      ) -> AsyncIterator[list[UploadFile]]:
    # Parsed here rather than by FastAPI so the checks above run first. Starlette spools each
    # file to a temp file (on disk past 1 MB); the form is closed when the response is done.
    # The body may take minutes to arrive: meanwhile this request holds no database place.
    form = await awaited_without_db(
        request, request.form(max_files=limits.MAX_FILES_PER_REQUEST, max_fields=100))
    try:
        yield [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    finally:
        await form.close()


_MULTIPART_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "description": "Images (PNG/JPEG/WebP) and/or .zip archives; repeat the field.",
    }}},
}}}}


@router.post("/datasets/{dataset_id}/items", response_model=UploadResult,
             operation_id="upload_items", openapi_extra=_MULTIPART_DOC)
def upload_items(dataset_id: str, request: Request, db: Session = DB,
                 dataset: Dataset = Depends(dataset_w),
                 principal: Principal = Depends(can_write),
                 storage: Storage = STORAGE,
                 files: list[UploadFile] = Depends(_form_files)) -> UploadResult:
    if not files:
        raise Unprocessable("Send at least one file in the multipart field 'files'.",
                            errors=[{"loc": ["body", "files"], "msg": "field required"}])
    # The real sizes (Content-Length may be absent): the whole request must fit the quota.
    quotas.check_storage(db, principal.organization, sum(file_size(f.file) for f in files))
    ing = Ingest(db, storage, principal, dataset)
    end_reads(db)  # decoding and storing run outside any transaction; ``record`` writes briefly
    ingest_uploads(ing, files)
    return _finish(db, request, principal, storage, dataset, ing, "dataset.items.upload")


def _finish(db: Session, request: Request, principal: Principal, storage: Storage,
            dataset: Dataset, ing: Ingest, action: str) -> UploadResult:
    created, rejected = ing.result()
    if created:
        service.touch(dataset)
    audit.record(db, principal, action, request=request, target_type="dataset",
                 target_id=dataset.id, details={
                     "created": len(created), "rejected": len(rejected),
                     "bytes": sum(i.bytes for i in created)})
    return views.upload_result(storage, created, rejected)


# --- presigned uploads ------------------------------------------------------------------------

@router.post("/datasets/{dataset_id}/uploads", response_model=PresignResponse,
             operation_id="create_uploads")
def create_uploads(dataset_id: str, body: PresignRequest, request: Request,
                   db: Session = DB, dataset: Dataset = Depends(dataset_w),
                   principal: Principal = Depends(can_write),
                   storage: Storage = STORAGE) -> PresignResponse:
    files = [f.model_dump() for f in body.files]
    made, rejected = uploads.create(db, storage, principal, dataset, files)
    audit.record(db, principal, "dataset.uploads.create", request=request,
                 target_type="dataset", target_id=dataset.id,
                 details={"uploads": len(made), "rejected": len(rejected)})
    return PresignResponse.model_validate({"uploads": made, "rejected": rejected})


@router.post("/datasets/{dataset_id}/uploads/complete", response_model=UploadResult,
             operation_id="complete_uploads")
def complete_uploads(dataset_id: str, body: CompleteRequest, request: Request,
                     db: Session = DB, dataset: Dataset = Depends(dataset_w),
                     principal: Principal = Depends(can_write),
                     storage: Storage = STORAGE) -> UploadResult:
    ing = uploads.complete(db, storage, principal, dataset, body.upload_ids)
    return _finish(db, request, principal, storage, dataset, ing, "dataset.uploads.complete")


# --- items ------------------------------------------------------------------------------------

@router.get("/datasets/{dataset_id}/items", response_model=Page[ItemOut],
            operation_id="list_items")
def list_items(dataset_id: str, page: PageParams = PAGE,
               uncaptioned: bool = Query(False, description="Only items without a caption."),
               db: Session = DB, dataset: Dataset = Depends(dataset_r),
               storage: Storage = STORAGE) -> dict:
    stmt = repository.items_stmt(dataset, uncaptioned=uncaptioned)
    return paginate(db, stmt, DatasetItem.id, page, lambda i: views.item_out(storage, i))


@router.patch("/datasets/{dataset_id}/items", response_model=BulkEditResult,
              operation_id="update_items")
def update_items(dataset_id: str, body: BulkCaptionEdit, request: Request,
                 db: Session = DB, dataset: Dataset = Depends(dataset_w),
                 principal: Principal = Depends(can_write),
                 storage: Storage = STORAGE) -> BulkEditResult:
    items = captions.set_captions(db, dataset, [(e.id, e.caption) for e in body.items])
    service.touch(dataset)
    audit.record(db, principal, "dataset.items.update", request=request, target_type="dataset",
                 target_id=dataset.id, details={"items": len(items)})
    return BulkEditResult(updated=len(items), items=[views.item_out(storage, i) for i in items])


@router.get("/datasets/{dataset_id}/items/{item_id}", response_model=ItemOut,
            operation_id="get_item")
def get_item(dataset_id: str, item_id: str, dataset: Dataset = Depends(dataset_r),
             item: DatasetItem = Depends(item_r),
             storage: Storage = STORAGE) -> ItemOut:
    return views.item_out(storage, in_dataset(item, dataset))


@router.patch("/datasets/{dataset_id}/items/{item_id}", response_model=ItemOut,
              operation_id="update_item")
def update_item(dataset_id: str, item_id: str, body: CaptionUpdate, request: Request,
                db: Session = DB, dataset: Dataset = Depends(dataset_w),
                item: DatasetItem = Depends(item_w), principal: Principal = Depends(can_write),
                storage: Storage = STORAGE) -> ItemOut:
    in_dataset(item, dataset)
    item.caption = captions.normalize_caption(body.caption)
    service.touch(dataset)
    audit.record(db, principal, "dataset.item.update", request=request,
                 target_type="dataset_item", target_id=item.id)
    return views.item_out(storage, item)


@router.delete("/datasets/{dataset_id}/items/{item_id}", status_code=204,
               operation_id="delete_item")
def delete_item(dataset_id: str, item_id: str, request: Request,
                db: Session = DB, dataset: Dataset = Depends(dataset_w),
                item: DatasetItem = Depends(item_w), principal: Principal = Depends(can_write),
                storage: Storage = STORAGE) -> Response:
    service.delete_item(db, storage, dataset, in_dataset(item, dataset))
    audit.record(db, principal, "dataset.item.delete", request=request,
                 target_type="dataset_item", target_id=item.id,
                 details={"dataset_id": dataset.id, "filename": item.filename})
    return Response(status_code=204)

