"""A caption job's link to the service: heartbeats, and each batch of suggestions committed
together with the job's progress, conditional on this worker still owning the job.

Committing a batch's suggestions and ``progress_done`` in one transaction is what makes a
worker loss cheap: the next worker starts at ``progress_done`` and never redoes an image whose
suggestion was committed, nor skips one that was not.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.core.db import session_scope
from app.core.settings import get_settings
from app.integrations.quotas import org_gpu_exhausted
from app.jobs import signals
from app.jobs.state import now
from app.models import CaptionJob, CaptionSuggestion, DatasetItem

log = logging.getLogger("atelier.captioning")
OWNED = ("running", "cancelling")


class CaptionReporter:
    def __init__(self, job_id: str, org_id: str, worker_id: str, *, attempt: int,
                 gpu_seconds: float = 0.0) -> None:
        self.job_id, self.org_id, self.worker_id, self.attempt = job_id, org_id, worker_id, attempt
        self._gpu_before = gpu_seconds  # used by earlier attempts of this job
        self._since = time.monotonic()
        self.stop_reason: str | None = None  # why the service stopped the run (GPU quota)
        self.stopped = False  # cancelled, quota, or lost: end after the current batch
        self.lost = False  # another worker owns the job now
        # Beats well inside the timeout after which the reconciler requeues the job.
        self._beat_s = min(5.0, get_settings().heartbeat_timeout_s / 4)
        self._halt = threading.Event()
        self._beater = threading.Thread(target=self._beat_loop, daemon=True)

    def start(self) -> None:
        self._since = time.monotonic()
        self._beater.start()

    def close(self) -> None:
        self._halt.set()
        self._beater.join(timeout=10)

    def gpu_used(self) -> float:
        return self._gpu_before + (time.monotonic() - self._since)

    def _beat_loop(self) -> None:
        while not self._halt.wait(self._beat_s):
            try:
                with session_scope() as db:
                    self._advance(db, {})
            except Exception:
                log.exception("heartbeat failed for caption job %s", self.job_id)

    def _owned(self) -> Any:
        return (CaptionJob.id == self.job_id) & CaptionJob.status.in_(OWNED) & (
            CaptionJob.worker_id == self.worker_id)

    def _advance(self, db: Any, values: dict[str, Any]) -> bool:
        """Heartbeat (and ``values``) if still ours; notes a cancel or the GPU quota."""
        moved = db.execute(update(CaptionJob).where(self._owned()).values(
            heartbeat_at=now(), gpu_seconds=self.gpu_used(), **values)
            .execution_options(synchronize_session=False)).rowcount
        if not moved:
            self.lost = self.stopped = True
            return False
        status = db.scalar(select(CaptionJob.status).where(CaptionJob.id == self.job_id))
        if status == "cancelling":
            self.stopped = True
        elif (exhausted := org_gpu_exhausted(db, self.org_id)) and not self.stopped:
            self.stop_reason, self.stopped = exhausted, True
        return True

    def commit_batch(self, done: int, texts: dict[str, str], prefix: str | None) -> bool:
        """Store this batch's suggestions and ``progress_done = done`` at once; False (nothing
        stored) when the job is no longer ours."""
        for attempt in range(2):
            try:
                with session_scope() as db:
                    if not self._advance(db, {"progress_done": done}):
                        db.rollback()
                        return False
                    self._replace(db, texts, prefix)
                break
            except IntegrityError:  # an item was deleted meanwhile: look again, once
                if attempt:
                    raise
        signals.notify(self.job_id)
        return True

    def _replace(self, db: Any, texts: dict[str, str], prefix: str | None) -> None:
        present = dict(db.execute(select(DatasetItem.id, DatasetItem.dataset_id).where(
            DatasetItem.org_id == self.org_id, DatasetItem.id.in_(list(texts)))).all())
        if not present:
            return  # deleted since the job was created: nothing to suggest for
        # One current suggestion per item: this job's replaces an older job's.
        db.execute(delete(CaptionSuggestion).where(CaptionSuggestion.item_id.in_(present)))
        at = now()
        db.add_all([CaptionSuggestion(
            item_id=item_id, org_id=self.org_id, dataset_id=dataset_id,
            caption_job_id=self.job_id, text=texts[item_id], prefix=prefix,
            attempt=self.attempt, created_at=at) for item_id, dataset_id in present.items()])
