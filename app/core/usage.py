"""An org's storage usage, accounted from rows (DESIGN.md "Storage keys").

Every stored object that counts belongs to exactly one row, so summing the rows gives the usage
and deleting a row (with its object) lowers it by exactly that object's size. A model's
``bytes`` column holds everything under its prefix (files and previews) for that reason.
Thumbnails and resumable training state are not tracked per row and are not counted.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Checkpoint, DatasetItem, Model, ValidationImage


def storage_bytes(db: Session, org_id: str) -> int:
    """Total bytes the org holds in storage: dataset items, checkpoints, validation images and
    library models."""
    total = 0
    for column in (DatasetItem.bytes, Checkpoint.bytes, ValidationImage.bytes, Model.bytes):
        owner = column.class_
        stmt = select(func.coalesce(func.sum(column), 0)).where(owner.org_id == org_id)
        total += int(db.scalar(stmt) or 0)
    return total
