"""Datasets: storage keys, storage accounting, CRUD and deletion.

Services flush, never commit: the request's session dependency commits once at the end.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.errors import Conflict, NotFound
from app.core.locking import lock_org
from app.datasets import repository
from app.identity.principal import Principal
from app.models import Dataset, DatasetItem, PendingUpload
from app.models.base import utcnow
from app.storage.base import Storage, StorageError

log = logging.getLogger("atelier.datasets")


# --- storage keys -----------------------------------------------------------------------------

def dataset_prefix(org_id: str, dataset_id: str) -> str:
    return f"orgs/{org_id}/datasets/{dataset_id}/"


def item_key(org_id: str, dataset_id: str, item_id: str, ext: str) -> str:
    return f"{dataset_prefix(org_id, dataset_id)}items/{item_id}.{ext}"


def thumb_key(org_id: str, dataset_id: str, item_id: str) -> str:
    return f"{dataset_prefix(org_id, dataset_id)}thumbs/{item_id}.webp"


def upload_key(org_id: str, dataset_id: str, upload_id: str) -> str:
    """Where a presigned upload lands before ``complete`` verifies it."""
    return f"{dataset_prefix(org_id, dataset_id)}uploads/{upload_id}"


# --- storage accounting -----------------------------------------------------------------------

# Each source answers the bytes an org holds in one kind of object. Later domains (checkpoints,
# validation images, finalized models) append their own function here.
# --- datasets ---------------------------------------------------------------------------------

def create_dataset(db: Session, principal: Principal, name: str, description: str) -> Dataset:
    dataset = Dataset(org_id=principal.org_id, name=name, description=description)
    db.add(dataset)
    db.flush()
    return dataset


def update_dataset(dataset: Dataset, changes: dict[str, Any]) -> None:
    for field in ("name", "description"):
        if field in changes and changes[field] is not None:
            setattr(dataset, field, changes[field])
    dataset.updated_at = utcnow()


def touch(dataset: Dataset) -> None:
    """Item changes count as changes to the dataset (``updated_at`` shows the last edit)."""
    dataset.updated_at = utcnow()


def _refuse_if_needed(jobs: list[Any], what: str) -> None:
    if jobs:
        ids = ", ".join(job.id for job in jobs[:5])
        raise Conflict(
            f"{what} is used by a training job that has not finished ({ids}); cancel it or "
            "wait for it to end first.",
            extra={"job_ids": [job.id for job in jobs]},
        )


def _delete_objects_after_commit(
    db: Session, storage: Storage, keys: list[str], prefix: str | None = None
) -> None:
    """Objects go only once the rows are gone for good: deleting first and then failing to
    commit would leave rows pointing at nothing. A failure here leaves orphans (harmless,
    and swept by the prefix listing when the dataset goes), never a broken item."""

    def run() -> None:
        try:
            extra = [o.key for o in storage.list(prefix)] if prefix else []
            storage.delete_many(sorted(set(keys) | set(extra)))
        except StorageError:
            log.exception("could not delete %d storage objects", len(keys))

    defer(db, run)


def delete_dataset(db: Session, storage: Storage, dataset: Dataset) -> int:
    # Job creation snapshots the dataset under the same lock: exactly one of the two wins.
    lock_org(db, dataset.org_id)
    if db.scalar(select(Dataset.id).where(Dataset.id == dataset.id)) is None:
        raise NotFound("Dataset not found.")  # a concurrent delete won
    items = repository.all_items(db, dataset)
    jobs = repository.active_jobs_needing(
        db, dataset.org_id, dataset_id=dataset.id, item_ids=[i.id for i in items]
    )
    _refuse_if_needed(jobs, "This dataset")
    keys = _item_keys(items)
    keys += [p.storage_key for p in db.scalars(
        select(PendingUpload).where(PendingUpload.dataset_id == dataset.id)
    )]
    db.execute(delete(DatasetItem).where(DatasetItem.dataset_id == dataset.id))
    db.execute(delete(PendingUpload).where(PendingUpload.dataset_id == dataset.id))
    db.delete(dataset)
    db.flush()
    _delete_objects_after_commit(
        db, storage, keys, prefix=dataset_prefix(dataset.org_id, dataset.id)
    )
    return len(items)


def _item_keys(items: list[DatasetItem]) -> list[str]:
    keys = [i.storage_key for i in items]
    keys += [i.thumbnail_key for i in items if i.thumbnail_key]
    return keys


def delete_item(db: Session, storage: Storage, dataset: Dataset, item: DatasetItem) -> None:
    lock_org(db, dataset.org_id)
    jobs = repository.active_jobs_needing(db, dataset.org_id, item_ids=[item.id])
    _refuse_if_needed(jobs, "This item")
    db.delete(item)
    touch(dataset)
    db.flush()
    _delete_objects_after_commit(db, storage, _item_keys([item]))
