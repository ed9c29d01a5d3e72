"""Rows -> response bodies (with presigned URLs and counts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from app.datasets import repository
from app.datasets.schemas import DatasetOut, ItemOut, Rejection, SuggestionOut, UploadResult
from app.models import CaptionSuggestion, Dataset, DatasetItem
from app.storage.base import Storage

URL_EXPIRES_S = 3600


def item_out(storage: Storage, item: DatasetItem) -> ItemOut:
    # Presigning is local computation (no storage round trip), so a page of 200 items is cheap.
    return ItemOut(
        id=item.id, dataset_id=item.dataset_id, filename=item.filename, width=item.width,
        height=item.height, bytes=item.bytes, content_type=item.content_type, sha256=item.sha256,
        caption=item.caption, created_at=item.created_at,
        url=storage.presign_get(item.storage_key, URL_EXPIRES_S),
        thumbnail_url=(storage.presign_get(item.thumbnail_key, URL_EXPIRES_S)
                       if item.thumbnail_key else None),
        suggestion=suggestion_out(item.suggestion),
    )


def suggestion_out(row: CaptionSuggestion | None) -> SuggestionOut | None:
    if row is None:
        return None
    return SuggestionOut(text=row.text, caption_job_id=row.caption_job_id, prefix=row.prefix,
                         created_at=row.created_at)


def dataset_fields(db: Session, datasets: Sequence[Dataset | Row[Any]]) -> list[dict[str, Any]]:
    """``DatasetOut``'s fields as plain values, with the counts of a whole page in one query
    (list pages write these with orjson, as jobs do: see app.jobs.rendering.job_fields)."""
    counts = repository.counts_for(db, [d.id for d in datasets])
    return [
        {"id": d.id, "name": d.name, "description": d.description,
         "item_count": counts[d.id].item_count, "captioned_count": counts[d.id].captioned_count,
         "total_bytes": counts[d.id].total_bytes, "created_at": d.created_at,
         "updated_at": d.updated_at}
        for d in datasets
    ]


def dataset_out(db: Session, dataset: Dataset) -> DatasetOut:
    return DatasetOut.model_validate(dataset_fields(db, [dataset])[0])


def upload_result(
    storage: Storage, created: list[DatasetItem], rejected: list[dict[str, str]]
) -> UploadResult:
    return UploadResult(
        created=[item_out(storage, item) for item in created],
        rejected=[Rejection(**r) for r in rejected],
    )
