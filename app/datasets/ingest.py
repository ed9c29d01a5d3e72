"""The one path every upload takes (multipart, zip entry, presigned): verify, de-duplicate,
check the storage limit, store the image and its thumbnail, insert the item.

A file that fails any step is recorded in ``rejected`` with its reason and the rest go on, so
one bad file never sinks the others.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from fastapi import UploadFile
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.ids import new_id
from app.core.usage import storage_bytes
from app.datasets import limits, repository, service
from app.datasets.captions import normalize_caption
from app.datasets.images import Rejected, VerifiedImage, file_size, verify_image
from app.datasets.names import clean_filename
from app.identity.principal import Principal
from app.models import Dataset, DatasetItem
from app.storage.base import Storage, StorageError

log = logging.getLogger("atelier.datasets")

ZIP_MAGIC = b"PK\x03\x04"


class Ingest:
    def __init__(
        self, db: Session, storage: Storage, principal: Principal, dataset: Dataset
    ) -> None:
        self.db, self.storage, self.dataset = db, storage, dataset
        self.org_id = principal.org_id
        self.seen = repository.hashes(db, dataset)  # sha256 -> filename already in the dataset
        self.used = storage_bytes(db, principal.org_id)
        self.limit = principal.organization.storage_limit_bytes
        self.count = repository.item_count(db, dataset)
        self.created: list[DatasetItem] = []
        self.rejected: list[dict[str, str]] = []

    def reject(self, filename: str, reason: str) -> None:
        self.rejected.append({"filename": filename, "reason": reason})

    def add(
        self, filename: str, fp: BinaryIO, *, caption: str | None = None,
        size: int | None = None, staged: tuple[str, str] | None = None, label: str | None = None,
    ) -> DatasetItem | None:
        """``staged`` = (key, content type) of a presigned upload already in storage: copied
        server-side instead of uploaded again when the verified bytes are unchanged. ``label``
        names the file in ``rejected`` when that differs from the item's filename (zip entries)."""
        try:
            item = self._add(filename, fp, caption, size, staged)
        except Rejected as exc:
            self.reject(label or filename, str(exc))
            return None
        self.created.append(item)
        return item

    def _add(
        self, filename: str, fp: BinaryIO, caption: str | None, size: int | None,
        staged: tuple[str, str] | None,
    ) -> DatasetItem:
        if self.count >= limits.MAX_ITEMS_PER_DATASET:
            raise Rejected(f"the dataset is full ({limits.MAX_ITEMS_PER_DATASET} items)")
        img = verify_image(fp, size)
        if (first := self.seen.get(img.sha256)) is not None:
            raise Rejected(f"duplicate of {first}")
        if self.used + img.size > self.limit:
            raise Rejected(
                f"organization storage limit reached: {self.used} of {self.limit} bytes used, "
                f"this file needs {img.size}"
            )
        item_id = new_id()
        key = service.item_key(self.org_id, self.dataset.id, item_id, img.ext)
        tkey = service.thumb_key(self.org_id, self.dataset.id, item_id) if img.thumbnail else None
        self._store(img, key, tkey, staged)
        item = DatasetItem(
            id=item_id, org_id=self.org_id, dataset_id=self.dataset.id, filename=filename,
            storage_key=key, thumbnail_key=tkey, content_type=img.content_type,
            sha256=img.sha256, width=img.width, height=img.height, bytes=img.size,
            caption=normalize_caption(caption),
        )
        try:
            # A savepoint per item: a concurrent upload of the same image (unique constraint)
            # costs this one file, not the whole request.
            with self.db.begin_nested():
                self.db.add(item)
        except IntegrityError as exc:
            self._discard([key, tkey])
            raise Rejected("duplicate of an image stored by a concurrent upload") from exc
        self.seen[img.sha256] = filename
        self.used += img.size
        self.count += 1
        return item

    def _store(
        self, img: VerifiedImage, key: str, tkey: str | None, staged: tuple[str, str] | None
    ) -> None:
        try:
            if staged and not img.reencoded and staged[1] == img.content_type:
                self.storage.copy(staged[0], key)
            else:
                img.data.seek(0)
                self.storage.put(key, img.data, img.content_type)
            if tkey and img.thumbnail:
                self.storage.put(tkey, img.thumbnail, "image/webp")
        except StorageError as exc:
            log.exception("storing %s failed", key)
            self._discard([key, tkey])
            raise Rejected("could not be stored (storage unavailable); please retry") from exc
        finally:
            if img.reencoded:
                img.data.close()

    def _discard(self, keys: list[str | None]) -> None:
        try:
            self.storage.delete_many([k for k in keys if k])
        except StorageError:
            log.exception("could not remove %s", keys)

    def result(self) -> tuple[list[DatasetItem], list[dict[str, str]]]:
        return self.created, self.rejected


def is_zip(filename: str, fp: BinaryIO) -> bool:
    """By content first: a zip's local header magic; the name only decides for files that are
    not zips at all, so a broken ``.zip`` is reported as a broken archive."""
    fp.seek(0)
    head = fp.read(4)
    fp.seek(0)
    return head == ZIP_MAGIC or filename.lower().endswith(".zip")


def ingest_uploads(ing: Ingest, uploads: list[UploadFile]) -> None:
    # Imported here: zip_import builds on this module.
    from app.datasets.zip_import import ingest_zip

    for upload in uploads:
        name = clean_filename(upload.filename or "")
        fp = upload.file  # Starlette's spooled temp file: on disk past 1 MB, never whole in RAM
        size = file_size(fp)
        if is_zip(name, fp):
            ingest_zip(ing, name, fp, size)
        else:
            ing.add(name, fp, size=size)
