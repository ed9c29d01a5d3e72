"""Run one caption job: claim it, load the captioner once, caption the frozen items batch by
batch from where the job stands, and end it in the right state.

The claim is the training runner's (worker/runner/claim.py: the same limits under the org's
lock), and so are the conditional state changes and the error reporting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.captioning.notify import caption_job_status_changed
from app.core.db import session_scope
from app.core.settings import get_settings
from app.jobs.dispatch import dispatch_soon
from app.jobs.state import finish, now
from app.models import Captioner, CaptionJob, DatasetItem
from app.storage.base import Storage
from app.storage.factory import get_storage
from worker.runner.caption_reporter import CaptionReporter
from worker.runner.claim import claim_queued
from worker.runner.error_report import new_error_id, scrub
from worker.runner.run_job import worker_identity
from worker.runner.scratch import cached_file

log = logging.getLogger("atelier.captioning")


@dataclass
class Claim:
    org_id: str
    item_ids: list[str]
    done: int
    attempt: int
    gpu_seconds: float
    prefix: str | None
    max_length: int | None
    source: str | None
    kind: str
    captioner: str


def _claim(job_id: str, worker_id: str) -> Claim | None:
    with session_scope() as db:
        job = claim_queued(db, CaptionJob, job_id, worker_id, _not_started)
        if job is None:
            return None
        captioner = db.scalar(select(Captioner).where(Captioner.key == job.captioner))
        log.info("caption job %s attempt %s started on %s at item %s", job_id, job.attempts,
                 worker_id, job.progress_done)
        caption_job_status_changed(db, job)
        return Claim(job.org_id, list(job.item_ids), job.progress_done, job.attempts,
                     job.gpu_seconds, job.prefix, job.max_length,
                     captioner.source if captioner else None, job.style, job.captioner)


def _not_started(db: Session, job: CaptionJob, outcome: str, why: str) -> None:
    """A caption job that failed at the claim is announced; one that waits is not (the
    dashboard shows it queued)."""
    if outcome == "failed":
        caption_job_status_changed(db, job)


def _batches(ids: list[str], start: int, size: int) -> Iterator[tuple[int, list[str]]]:
    """(index after the batch, its ids) from ``start`` on."""
    for i in range(start, len(ids), size):
        yield min(i + size, len(ids)), ids[i:i + size]


def _images(storage: Storage, cache: Path, org_id: str,
            ids: list[str]) -> list[tuple[str, Image.Image]]:
    """The batch's images that still exist and decode; one bad file never stops the job."""
    with session_scope() as db:
        rows = db.execute(select(DatasetItem.id, DatasetItem.storage_key, DatasetItem.sha256)
                          .where(DatasetItem.org_id == org_id, DatasetItem.id.in_(ids))).all()
    found = {item_id: (key, sha) for item_id, key, sha in rows}
    images = []
    for item_id in ids:
        if item_id not in found:
            continue  # deleted since the job was created
        key, sha = found[item_id]
        try:
            path = cached_file(storage, cache, key, sha, Path(key).suffix)
            with Image.open(path) as img:
                images.append((item_id, img.convert("RGB")))
        except Exception:
            log.exception("caption job: item %s could not be read; skipped", item_id)
    return images


def _finish(job_id: str, worker_id: str, status: str, reporter: CaptionReporter,
            error: str | None = None) -> str:
    with session_scope() as db:
        values: dict[str, Any] = {"finished_at": now(), "heartbeat_at": now(),
                                  "gpu_seconds": reporter.gpu_used()}
        if error:
            values["error"] = error
        ended = finish(db, job_id, worker_id, status, model=CaptionJob, **values)
        if ended:
            job = db.get(CaptionJob, job_id)
            assert job is not None
            caption_job_status_changed(db, job)
        return ended or status


def _caption_all(claim: Claim, reporter: CaptionReporter) -> bool:
    """True once every item is done; False when the run stopped early (cancel, quota, lost)."""
    from worker.captioning import load_captioner

    if not claim.source:
        raise LookupError(f"captioner {claim.captioner} is not registered")
    settings = get_settings()
    assert settings.scratch_dir is not None
    storage, cache = get_storage(), settings.scratch_dir / "cache"
    model = load_captioner(claim.source, claim.kind)  # type: ignore[arg-type]  # once per job
    for done, ids in _batches(claim.item_ids, claim.done, settings.caption_batch_size):
        if reporter.stopped:
            return False
        images = _images(storage, cache, claim.org_id, ids)
        texts = model.caption([img for _, img in images],
                              max_length=claim.max_length) if images else []
        suggestions = {item_id: text.strip() for (item_id, _), text
                       in zip(images, texts, strict=True) if text and text.strip()}
        if not reporter.commit_batch(done, suggestions, claim.prefix):
            return False
    return True


def user_facing_error(exc: BaseException) -> str:
    from worker.captioning import CaptionerLoadError

    if isinstance(exc, CaptionerLoadError):
        # Operators' messages may name server paths: tenants read this.
        return f"The captioner could not be loaded: {scrub(str(exc))}"
    if isinstance(exc, LookupError):
        return "The captioner is not registered any more. Contact support with the job id."
    if "out of memory" in str(exc).lower():
        return "Captioning ran out of GPU memory. Contact support with the job id."
    return "Captioning failed unexpectedly. Start a new caption job, or contact support."


def run_caption_job(job_id: str) -> str:
    """Returns the state the job ended in on this worker ("skipped" if not claimed)."""
    worker_id = worker_identity()
    claim = _claim(job_id, worker_id)
    if claim is None:
        return "skipped"
    reporter = CaptionReporter(job_id, claim.org_id, worker_id, attempt=claim.attempt,
                               gpu_seconds=claim.gpu_seconds)
    reporter.start()
    try:
        completed = _caption_all(claim, reporter)
        reporter.close()
        if reporter.lost:
            return "lost"
        # A cancel that landed first still ends it cancelled (app/jobs/state.py ``finish``).
        if completed:
            return _finish(job_id, worker_id, "succeeded", reporter)
        return _finish(job_id, worker_id, "cancelled", reporter, reporter.stop_reason)
    except Exception as exc:
        reporter.close()
        # The traceback stays in the worker's log; the tenant gets a message and the error id.
        error_id = new_error_id()
        log.exception("caption job %s failed (error id %s)", job_id, error_id)
        return _finish(job_id, worker_id, "failed", reporter,
                       f"{user_facing_error(exc)} (error id {error_id})")
    finally:
        dispatch_soon()  # this GPU is free: send the next fair job
