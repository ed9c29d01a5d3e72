"""`atelier datasets upload DATASET DIR`: a folder of images (+ same-name .txt captions) into a
dataset through presigned direct-to-storage uploads.

Resumable by content: the dataset's items carry their sha256, so a re-run (after an interrupt,
or on a folder that grew) only sends files whose bytes the dataset does not have yet. Files are
completed in small batches, so an interrupt loses at most one batch of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.cli.client_http import Api, ApiError
from app.core.hashing import file_sha256

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".webp": "image/webp"}
BATCH = 32  # files per presign/complete round trip: small so an interrupt loses little
CAPTION_BATCH = 500  # the bulk PATCH takes up to 1000 items


@dataclass
class LocalFile:
    path: Path
    content_type: str
    size: int
    sha256: str
    caption: str | None


@dataclass
class UploadSummary:
    found: int = 0
    skipped: int = 0  # already in the dataset
    created: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    captioned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "skipped": self.skipped,
                "created": [{"id": i["id"], "filename": i["filename"]} for i in self.created],
                "rejected": self.rejected, "captions_applied": self.captioned}


def _caption_for(image: Path) -> str | None:
    txt = image.with_suffix(".txt")
    if not txt.is_file():
        return None
    # utf-8-sig: editors on Windows like to start text files with a BOM.
    return txt.read_text(encoding="utf-8-sig", errors="replace").strip() or None


def scan(folder: Path, workers: int) -> list[LocalFile]:
    """Every image under ``folder`` (recursively, in a stable order) with hash and caption."""
    images = sorted(p for p in folder.rglob("*")
                    if p.is_file() and p.suffix.lower() in CONTENT_TYPES
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts))

    def load(path: Path) -> LocalFile:
        return LocalFile(path, CONTENT_TYPES[path.suffix.lower()], path.stat().st_size,
                         file_sha256(path), _caption_for(path))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(load, images))


def _send(storage: httpx.Client, upload: dict[str, Any], local: LocalFile) -> None:
    """The bytes go straight to storage: S3 (or the local backend's /storage/{token})."""
    with local.path.open("rb") as fp:
        if upload["method"] == "PUT":
            r = storage.put(upload["url"], content=fp.read(), headers=upload.get("headers") or {})
        else:
            files = {"file": (local.path.name, fp, local.content_type)}
            r = storage.post(upload["url"], data=upload.get("fields") or {}, files=files)
    if not r.is_success:
        raise ApiError(r)


def _pair(batch: list[LocalFile], answer: dict[str, Any]) -> list[tuple[LocalFile, dict]]:
    """Match presigned uploads to the files declared. The server answers accepted files in
    declaration order and lists refused ones by name, so walk both lists together."""
    uploads = list(answer["uploads"])
    pairs: list[tuple[LocalFile, dict]] = []
    for local in batch:
        if uploads and uploads[0]["filename"] == local.path.name:
            pairs.append((local, uploads.pop(0)))
    if len(pairs) != len(answer["uploads"]):  # names changed by the server: fall back on order
        accepted = [f for f in batch if f.path.name not in
                    {r["filename"] for r in answer.get("rejected", [])}]
        pairs = list(zip(accepted, answer["uploads"], strict=False))
    return pairs


def _upload_batch(api: Api, storage: httpx.Client, pool: ThreadPoolExecutor, dataset_id: str,
                  batch: list[LocalFile], summary: UploadSummary,
                  tick: Callable[[int], None]) -> None:
    declared = [{"filename": f.path.name, "content_type": f.content_type, "size": f.size}
                for f in batch]
    answer = api.post(f"/v1/datasets/{dataset_id}/uploads", {"files": declared})
    summary.rejected.extend(answer.get("rejected", []))

    def send(pair: tuple[LocalFile, dict[str, Any]]) -> str | None:
        local, upload = pair
        try:
            _send(storage, upload, local)
            return str(upload["upload_id"])
        except (ApiError, httpx.HTTPError, OSError) as exc:
            summary.rejected.append({"filename": local.path.name, "reason": f"upload: {exc}"})
            return None
        finally:
            tick(1)

    sent = [u for u in pool.map(send, _pair(batch, answer)) if u is not None]
    if sent:
        done = api.post(f"/v1/datasets/{dataset_id}/uploads/complete", {"upload_ids": sent})
        summary.created.extend(done["created"])
        summary.rejected.extend(done["rejected"])


def _batches(files: list[LocalFile]) -> Iterator[list[LocalFile]]:
    for start in range(0, len(files), BATCH):
        yield files[start:start + BATCH]


def upload_folder(api: Api, dataset_id: str, folder: Path, *, workers: int,
                  tick: Callable[[int], None], on_total: Callable[[int], None]) -> UploadSummary:
    files = scan(folder, workers)
    summary = UploadSummary(found=len(files))
    present = {item["sha256"] for item in api.pages(f"/v1/datasets/{dataset_id}/items")}
    missing: list[LocalFile] = []
    queued: set[str] = set()
    for f in files:
        if f.sha256 in present or f.sha256 in queued:  # also: the same bytes twice in DIR
            summary.skipped += 1
        else:
            queued.add(f.sha256)
            missing.append(f)
    on_total(len(missing))
    # Storage uploads use their own client: presigned URLs must not carry the API key.
    # Batches go one after another (each completed before the next, so an interrupt loses at
    # most one); the files of a batch go to storage in parallel.
    with httpx.Client(timeout=300) as storage, ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _batches(missing):
            _upload_batch(api, storage, pool, dataset_id, batch, summary, tick)
    summary.captioned = apply_captions(api, dataset_id, files)
    return summary


def apply_captions(api: Api, dataset_id: str, files: list[LocalFile]) -> int:
    """Set each item's caption from its .txt (matched by content, so renames do not matter);
    only changed captions are sent, which keeps re-runs cheap."""
    wanted = {f.sha256: f.caption for f in files if f.caption is not None}
    edits = [{"id": item["id"], "caption": wanted[item["sha256"]]}
             for item in api.pages(f"/v1/datasets/{dataset_id}/items")
             if item["sha256"] in wanted and item["caption"] != wanted[item["sha256"]]]
    for start in range(0, len(edits), CAPTION_BATCH):
        api.patch(f"/v1/datasets/{dataset_id}/items", {"items": edits[start:start + CAPTION_BATCH]})
    return len(edits)
