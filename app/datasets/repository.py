"""Dataset queries. Every one is scoped to an org or to a dataset already loaded through
``app.core.tenancy``, so nothing here can reach another org's rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.models import Dataset, DatasetItem, TrainingJob

# A job still reads its dataset's images while it is in one of these states.
ACTIVE_JOB_STATUSES = ("queued", "running", "cancelling")


@dataclass
class DatasetCounts:
    item_count: int = 0
    captioned_count: int = 0
    total_bytes: int = 0


# Built once, with the page's ids as one expanding parameter: not a new statement (and a new
# cache key per page length) on every page of datasets.
_COUNTS = (
    select(
        DatasetItem.dataset_id,
        func.count(DatasetItem.id),
        func.count(DatasetItem.caption),  # captions are NULL when empty (see captions.py)
        func.coalesce(func.sum(DatasetItem.bytes), 0),
    )
    .where(DatasetItem.dataset_id.in_(bindparam("ids", expanding=True)))
    .group_by(DatasetItem.dataset_id)
)


def counts_for(db: Session, dataset_ids: Sequence[str]) -> dict[str, DatasetCounts]:
    """Counts for a page of datasets in one grouped query."""
    if not dataset_ids:
        return {}
    found = {row[0]: DatasetCounts(int(row[1]), int(row[2]), int(row[3]))
             for row in db.connection().execute(_COUNTS, {"ids": list(dataset_ids)})}
    return {ds_id: found.get(ds_id, DatasetCounts()) for ds_id in dataset_ids}


def items_stmt(dataset: Dataset, *, uncaptioned: bool = False) -> Select[tuple[DatasetItem]]:
    stmt = select(DatasetItem).where(
        DatasetItem.org_id == dataset.org_id, DatasetItem.dataset_id == dataset.id
    )
    if uncaptioned:
        stmt = stmt.where(DatasetItem.caption.is_(None))
    return stmt


def all_items(db: Session, dataset: Dataset) -> list[DatasetItem]:
    """Every item, oldest first (stable order for exports and bulk operations)."""
    return list(db.scalars(items_stmt(dataset).order_by(DatasetItem.id)))


def items_by_ids(db: Session, dataset: Dataset, ids: Iterable[str]) -> dict[str, DatasetItem]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = db.scalars(items_stmt(dataset).where(DatasetItem.id.in_(wanted)))
    return {row.id: row for row in rows}


def hashes(db: Session, dataset: Dataset) -> dict[str, str]:
    """sha256 -> filename of every item, for de-duplication within the dataset."""
    stmt = select(DatasetItem.sha256, DatasetItem.filename).where(
        DatasetItem.dataset_id == dataset.id
    )
    return {sha: name for sha, name in db.execute(stmt)}


def item_count(db: Session, dataset: Dataset) -> int:
    stmt = select(func.count(DatasetItem.id)).where(DatasetItem.dataset_id == dataset.id)
    return int(db.scalar(stmt) or 0)


def _snapshot_ids(snapshot: Any) -> set[str]:
    """Item ids in a job's frozen snapshot; tolerant of the entry shape (dicts with ``id`` or
    ``item_id``, or bare ids) so this check never silently misses a job."""
    ids: set[str] = set()
    for entry in snapshot or []:
        if isinstance(entry, str):
            ids.add(entry)
        elif isinstance(entry, dict):
            for key in ("id", "item_id"):
                if isinstance(entry.get(key), str):
                    ids.add(entry[key])
    return ids


def active_jobs_needing(
    db: Session, org_id: str, *, dataset_id: str | None = None, item_ids: Iterable[str] = ()
) -> list[TrainingJob]:
    """Queued/running/cancelling jobs of the org that use the dataset or any of the items.

    Active jobs per org are few (bounded by the concurrency limit plus the queue), so the
    snapshot is inspected in Python, portably across PostgreSQL and SQLite JSON.
    """
    wanted = set(item_ids)
    jobs = db.scalars(
        select(TrainingJob).where(
            TrainingJob.org_id == org_id, TrainingJob.status.in_(ACTIVE_JOB_STATUSES)
        )
    )
    return [
        job for job in jobs
        if (dataset_id is not None and job.dataset_id == dataset_id)
        or (wanted and wanted & _snapshot_ids(job.dataset_snapshot))
    ]
