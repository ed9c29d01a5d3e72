"""Caption bulk operations, caption import and the dataset export."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.datasets import captions, export, repository, service
from app.datasets.deps import can_write, dataset_r, dataset_w
from app.datasets.schemas import BulkCaptionOp, BulkOpResult, CaptionImportResult
from app.identity.principal import Principal
from app.models import Dataset
from app.storage.base import Storage
from app.storage.factory import STORAGE
from app.storage.signing import content_disposition

router = APIRouter()


@router.post("/datasets/{dataset_id}/captions/bulk", response_model=BulkOpResult,
             operation_id="bulk_caption_op")
def bulk_caption_op(dataset_id: str, body: BulkCaptionOp, request: Request,
                    db: Session = DB, dataset: Dataset = Depends(dataset_w),
                    principal: Principal = Depends(can_write)) -> BulkOpResult:
    updated = captions.bulk_op(
        db, dataset, body.op, item_ids=body.item_ids, text=body.text, find=body.find,
        replace=body.replace, separator=body.separator,
    )
    service.touch(dataset)
    audit.record(db, principal, "dataset.captions.bulk", request=request,
                 target_type="dataset", target_id=dataset.id,
                 details={"op": body.op, "updated": updated})
    return BulkOpResult(updated=updated)


@router.post("/datasets/{dataset_id}/captions/import", response_model=CaptionImportResult,
             operation_id="import_captions")
def import_captions(dataset_id: str, request: Request,
                    file: UploadFile = File(description="data.jsonl, or a .zip of .txt "
                                                        "captions and/or data.jsonl"),
                    db: Session = DB, dataset: Dataset = Depends(dataset_w),
                    principal: Principal = Depends(can_write)) -> CaptionImportResult:
    result = captions.import_captions(db, dataset, file.file)
    service.touch(dataset)
    audit.record(db, principal, "dataset.captions.import", request=request,
                 target_type="dataset", target_id=dataset.id,
                 details={"updated": result.updated, "unmatched": len(result.unmatched)})
    return CaptionImportResult(updated=result.updated, unmatched=result.unmatched[:1000],
                               errors=result.errors[:1000])


@router.get("/datasets/{dataset_id}/export", operation_id="export_dataset",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}},
                             "description": "images + .txt captions + data.jsonl"}})
def export_dataset(dataset_id: str, db: Session = DB,
                   dataset: Dataset = Depends(dataset_r),
                   storage: Storage = STORAGE) -> StreamingResponse:
    entries = export.plan(repository.all_items(db, dataset))
    return StreamingResponse(
        export.stream_zip(storage, entries), media_type="application/zip",
        headers={"Content-Disposition": content_disposition(f"{dataset.name}.zip")},
    )
