"""Presigned direct-to-storage uploads.

1. ``create``: the client declares each file (name, type, size); the server checks the
   declaration against the limits, reserves nothing but a ``PendingUpload`` row, and answers a
   presigned POST bounded to the declared size (S3 enforces it; moto and some S3 clones do not).
2. The client sends the bytes straight to storage.
3. ``complete``: the server trusts nothing the client said. It checks the object exists, that
   its size is the declared one and within the limits, and decodes it like any other upload.
   Whatever happens the staged object is deleted: a verified image has been copied to its item
   key, a rejected one must not linger. The items are recorded by ``Ingest.record`` (the org's
   lock, the storage limit against the current total), so concurrent completes cannot exceed
   the quota together.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import end_reads
from app.core.ids import new_id
from app.datasets import limits, service
from app.datasets.images import CONTENT_TYPES, Rejected, check_file_size
from app.datasets.ingest import Ingest
from app.datasets.names import clean_filename
from app.identity.principal import Principal
from app.integrations import quotas
from app.models import Dataset, PendingUpload
from app.storage.base import Storage, StorageError

log = logging.getLogger("atelier.datasets")
_UNAVAILABLE = "storage unavailable while {} the file; please upload it again"


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt  # SQLite drops the zone


def _sweep_expired(db: Session, storage: Storage, dataset: Dataset) -> None:
    """Forget presigned uploads nobody completed, and their staged objects."""
    now = datetime.now(UTC)
    rows = db.scalars(select(PendingUpload).where(PendingUpload.dataset_id == dataset.id))
    stale = [row for row in rows if _aware(row.expires_at) <= now]
    if stale:
        try:
            storage.delete_many([row.storage_key for row in stale])
        except StorageError:
            log.exception("could not delete %d expired staged uploads", len(stale))
            return  # keep the rows so a later sweep (or the dataset's deletion) retries
        for row in stale:
            db.delete(row)


def create(
    db: Session, storage: Storage, principal: Principal, dataset: Dataset,
    files: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    _sweep_expired(db, storage, dataset)
    accepted: list[tuple[str, str, int]] = []
    rejected: list[dict[str, str]] = []
    for spec in files:
        name = clean_filename(spec["filename"])
        try:
            if spec["content_type"] not in CONTENT_TYPES:
                raise Rejected(
                    f"content type {spec['content_type']} is not accepted; "
                    "use image/png, image/jpeg or image/webp"
                )
            check_file_size(spec["size"])
        except Rejected as exc:
            rejected.append({"filename": name, "reason": str(exc)})
            continue
        accepted.append((name, spec["content_type"], spec["size"]))
    quotas.check_storage(db, principal.organization, sum(size for _, _, size in accepted))
    expires_at = datetime.now(UTC) + timedelta(seconds=limits.PRESIGN_EXPIRES_S)
    uploads: list[dict[str, Any]] = []
    for name, content_type, size in accepted:
        upload_id = new_id()
        key = service.upload_key(principal.org_id, dataset.id, upload_id)
        db.add(PendingUpload(
            id=upload_id, org_id=principal.org_id, dataset_id=dataset.id, filename=name,
            content_type=content_type, declared_bytes=size, storage_key=key,
            expires_at=expires_at,
        ))
        signed = storage.presign_post(key, content_type, size, limits.PRESIGN_EXPIRES_S)
        uploads.append({
            "upload_id": upload_id, "filename": name, "url": signed.url,
            "method": signed.method, "fields": signed.fields, "headers": signed.headers,
            "expires_at": expires_at,
        })
    db.flush()
    return uploads, rejected


def _complete_one(ing: Ingest, storage: Storage, row: PendingUpload, scratch: Path) -> None:
    if _aware(row.expires_at) <= datetime.now(UTC):
        raise Rejected("the upload URL expired before the upload was completed")
    try:
        info = storage.head(row.storage_key)
    except StorageError as exc:
        raise Rejected(_UNAVAILABLE.format("checking")) from exc
    if info is None:
        raise Rejected("nothing was uploaded for this file")
    if info.size != row.declared_bytes:
        raise Rejected(f"uploaded {info.size} bytes but declared {row.declared_bytes} bytes")
    check_file_size(info.size)
    path = scratch / row.id
    try:
        storage.download_to(row.storage_key, str(path))
    except StorageError as exc:
        raise Rejected(_UNAVAILABLE.format("reading")) from exc
    try:
        with path.open("rb") as fp:
            ing.add(row.filename, fp, size=info.size, staged=(row.storage_key, row.content_type))
    finally:
        path.unlink(missing_ok=True)


def complete(
    db: Session, storage: Storage, principal: Principal, dataset: Dataset, upload_ids: list[str]
) -> Ingest:
    ing = Ingest(db, storage, principal, dataset)
    wanted = list(dict.fromkeys(upload_ids))
    rows = {
        row.id: row for row in db.scalars(
            select(PendingUpload).where(
                PendingUpload.org_id == principal.org_id,
                PendingUpload.dataset_id == dataset.id,
                PendingUpload.id.in_(wanted),
            )
        )
    }
    end_reads(db)  # downloads and decoding run outside any transaction; ``record`` writes
    staged: list[str] = []
    with tempfile.TemporaryDirectory(prefix="atelier-upload-") as scratch:
        for upload_id in wanted:
            row = rows.get(upload_id)
            if row is None:
                ing.reject(upload_id, "unknown upload id (never created, or already completed)")
                continue
            try:
                _complete_one(ing, storage, row, Path(scratch))
            except Rejected as exc:
                ing.reject(row.filename, str(exc))
            staged.append(row.storage_key)
            db.delete(row)
    if staged:
        try:
            storage.delete_many(staged)
        except StorageError:
            log.exception("could not delete %d staged uploads", len(staged))
    ing.record()  # under the org's lock, after the slow work: see app/integrations/quotas.py
    db.flush()
    return ing
