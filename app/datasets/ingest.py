"""The one path every upload takes (multipart, zip entry, presigned): verify, de-duplicate,
store the image and its thumbnail (the slow work, no lock held), then ``record``: under the
org's lock, check the storage limit against the current total and insert the items that fit
(see app/integrations/quotas.py). A stored object that is refused is deleted.

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
from app.core.locking import lock_org
from app.core.usage import storage_bytes
from app.datasets import limits, repository, service
from app.datasets.captions import normalize_caption
from app.datasets.images import Rejected, VerifiedImage, file_size, verify_image
from app.datasets.names import clean_filename
from app.identity.principal import Principal
from app.integrations.quotas import storage_refused
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
        self.pending: list[tuple[DatasetItem, str, list[str | None]]] = []  # stored, unrecorded
        self.rejected: list[dict[str, str]] = []
        self.refused_bytes = 0  # bytes refused for the storage limit by ``record``

    def reject(self, filename: str, reason: str) -> None:
        self.rejected.append({"filename": filename, "reason": reason})

    def add(
        self, filename: str, fp: BinaryIO, *, caption: str | None = None,
        size: int | None = None, staged: tuple[str, str] | None = None, label: str | None = None,
    ) -> DatasetItem | None:
        """Verify and store one file; its row is inserted by ``record``. ``staged`` = (key,
        content type) of a presigned upload already in storage: copied server-side instead of
        uploaded again when the verified bytes are unchanged. ``label`` names the file in
        ``rejected`` when that differs from the item's filename (zip entries)."""
        try:
            item, keys = self._add(filename, fp, caption, size, staged)
        except Rejected as exc:
            self.reject(label or filename, str(exc))
            return None
        self.pending.append((item, label or filename, keys))
        return item

    def _add(
        self, filename: str, fp: BinaryIO, caption: str | None, size: int | None,
        staged: tuple[str, str] | None,
    ) -> tuple[DatasetItem, list[str | None]]:
        if self.count >= limits.MAX_ITEMS_PER_DATASET:
            raise Rejected(f"the dataset is full ({limits.MAX_ITEMS_PER_DATASET} items)")
        img = verify_image(fp, size)
        if (first := self.seen.get(img.sha256)) is not None:
            raise Rejected(f"duplicate of {first}")
        if self.used + img.size > self.limit:  # early answer; ``record`` has the final say
            self.refused_bytes += img.size
            raise Rejected(self._over_limit(self.used, img.size))
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
        self.seen[img.sha256] = filename
        self.used += img.size
        self.count += 1
        return item, [key, tkey]

    def _over_limit(self, used: int, size: int) -> str:
        return (f"organization storage limit reached: {used} of {self.limit} bytes used, "
                f"this file needs {size}")

    def record(self) -> None:
        """The short locked step: insert the stored items that still fit the org's storage
        limit, in upload order; delete the objects of those that do not. Raises 413 with the
        numbers when files were refused for the limit and none was recorded."""
        pending, self.pending = self.pending, []
        if not pending and not self.refused_bytes:
            return
        if pending:
            lock_org(self.db, self.org_id)
        used = storage_bytes(self.db, self.org_id)
        count = repository.item_count(self.db, self.dataset)
        for item, label, keys in pending:
            if count >= limits.MAX_ITEMS_PER_DATASET:
                self._refuse(label, keys, f"the dataset is full ({limits.MAX_ITEMS_PER_DATASET} "
                             "items)")
            elif used + item.bytes > self.limit:
                self.refused_bytes += item.bytes
                self._refuse(label, keys, self._over_limit(used, item.bytes))
            elif self._insert(item, label, keys):
                used, count = used + item.bytes, count + 1
        if self.refused_bytes and not self.created:
            raise storage_refused(used, self.limit, self.refused_bytes)

    def _insert(self, item: DatasetItem, label: str, keys: list[str | None]) -> bool:
        try:
            # A savepoint per item: a concurrent upload of the same image (unique constraint)
            # costs this one file, not the whole request.
            with self.db.begin_nested():
                self.db.add(item)
        except IntegrityError:
            self._refuse(label, keys, "duplicate of an image stored by a concurrent upload")
            return False
        self.created.append(item)
        return True

    def _refuse(self, label: str, keys: list[str | None], reason: str) -> None:
        self._discard(keys)
        self.reject(label, reason)

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
    ing.record()
