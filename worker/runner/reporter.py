"""Training callbacks that report to the service: database rows, storage objects, heartbeats.

Writes are throttled (progress at most every ``flush_s``), and every update is conditional on
this worker still owning the job, so a worker that was presumed dead cannot overwrite the job
after another worker took it over.

GPU time is enforced here: every write of progress or heartbeat also writes the job's GPU
seconds so far, then reads the org's total for the month; at the limit the run stops at the
next step and ends ``cancelled`` with the reason (app/integrations/quotas.py).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from app.core.db import session_scope
from app.core.hashing import file_sha256
from app.core.keys import checkpoint_prefix, validation_key
from app.integrations.quotas import org_gpu_exhausted
from app.jobs import signals
from app.jobs.state import now
from app.models import Checkpoint, JobLogLine, JobMetric, TrainingJob, ValidationImage
from app.storage.base import Storage
from worker.runner.error_report import scrub
from worker.runner.state_sync import upload_state
from worker.training.callbacks import TrainingCallbacks
from worker.training.types import Progress
from worker.training.types import ValidationImage as ValidationImageFile

log = logging.getLogger("atelier.runner")
OWNED = ("running", "cancelling")
RATE_TAU_S = 30.0
"""Time constant of the smoothed training rate the ETA is computed from: a few slow or fast
steps move it little, a lasting change shows within about half a minute."""


class JobReporter(TrainingCallbacks):
    def __init__(self, job_id: str, org_id: str, worker_id: str, storage: Storage,
                 *, flush_s: float = 1.0, heartbeat_s: float = 5.0,
                 gpu_seconds: float = 0.0) -> None:
        self.job_id, self.org_id, self.worker_id = job_id, org_id, worker_id
        self._gpu_before = gpu_seconds  # used by earlier attempts of this job
        self._gpu_since = time.monotonic()
        self.stop_reason: str | None = None  # why the service stopped the run (GPU quota)
        self.storage = storage
        self.flush_s = flush_s
        self._metrics: list[dict[str, Any]] = []
        self._last: Progress | None = None
        self._last_flush = 0.0
        self._phase: tuple[str, int, int] | None = None
        self._phase_written = 0.0
        self._validation_started: float | None = None
        self._seconds_per_image: float | None = None  # smoothed
        self._steps_seen = 0
        self._stop = False
        self.lost = False  # another worker owns the job now
        self._heartbeat_s = heartbeat_s
        self._halt = threading.Event()
        self._beater = threading.Thread(target=self._heartbeat_loop, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._gpu_since = time.monotonic()
        self._beater.start()

    def gpu_used(self) -> float:
        """This job's GPU seconds, all attempts, up to now."""
        return self._gpu_before + (time.monotonic() - self._gpu_since)

    def close(self) -> None:
        self._halt.set()
        self._beater.join(timeout=10)
        self.flush()

    def _heartbeat_loop(self) -> None:
        # Beats even while a long validation or upload blocks the training loop.
        while not self._halt.wait(self._heartbeat_s):
            try:
                self._update({"heartbeat_at": now()})
            except Exception:
                log.exception("heartbeat failed for job %s", self.job_id)

    def _owned(self) -> Any:
        return (TrainingJob.id == self.job_id) & TrainingJob.status.in_(OWNED) & (
            TrainingJob.worker_id == self.worker_id)

    def _update(self, values: dict[str, Any]) -> None:
        with session_scope() as db:
            moved = db.execute(update(TrainingJob).where(self._owned())
                               .values(gpu_seconds=self.gpu_used(), **values)
                               .execution_options(synchronize_session=False)).rowcount
            status = db.scalar(select(TrainingJob.status).where(TrainingJob.id == self.job_id))
            exhausted = org_gpu_exhausted(db, self.org_id) if moved else None
        signals.notify(self.job_id)
        if not moved:  # cancelled for good, or requeued and taken over by another worker
            self.lost = True
            self._stop = True
        elif status == "cancelling":
            self._stop = True
        if exhausted and not self._stop:
            self.stop_reason = exhausted
            self._stop = True
            self.on_log(f"stopping: {exhausted}")

    # --- callbacks ---------------------------------------------------------------------------
    def _smooth(self, progress: Progress) -> float:
        """Exponential average of seconds per image; each step weighs by the time it took, so
        the average spans about RATE_TAU_S whatever the step rate."""
        if progress.images_per_second <= 0 or not math.isfinite(progress.images_per_second):
            return 1.0 / self._seconds_per_image if self._seconds_per_image else 0.0
        sample = 1.0 / progress.images_per_second
        self._steps_seen += 1
        if self._seconds_per_image is None or self._steps_seen == 2:
            # The first step carries the warm-up (allocation, kernel choice): the second
            # replaces it, so the ETA does not start high and sink.
            self._seconds_per_image = sample
        else:
            weight = 1.0 - math.exp(-min(progress.seconds, RATE_TAU_S) / RATE_TAU_S)
            self._seconds_per_image += weight * (sample - self._seconds_per_image)
        return 1.0 / self._seconds_per_image

    def on_phase(self, phase: str, done: int = 0, total: int = 0) -> None:
        changed = self._phase is None or self._phase[0] != phase
        self._phase = (phase, done, total)
        values: dict[str, Any] = {}
        rendering = phase in ("rendering_step0", "validating")
        if changed and rendering:
            self._validation_started = time.monotonic()
        elif changed and self._validation_started is not None:
            # Measured, so the ETA can count the validations still to come.
            values["validation_seconds"] = time.monotonic() - self._validation_started
            self._validation_started = None
        # A new phase shows at once; counts within one at most every flush_s, and the last.
        if changed or done >= total or time.monotonic() - self._phase_written >= self.flush_s:
            self._phase_written = time.monotonic()
            self._update({"phase": phase, "phase_done": done if total else None,
                          "phase_total": total or None, "heartbeat_at": now(), **values})

    def on_progress(self, progress: Progress) -> None:
        progress = replace(progress, images_per_second=self._smooth(progress))
        self._last = progress
        self._metrics.append({"job_id": self.job_id, "step": progress.step,
                              "loss": float(progress.loss), "lr": float(progress.lr)})
        if (time.monotonic() - self._last_flush >= self.flush_s
                or progress.step >= progress.total_steps):
            self.flush()

    def flush(self) -> None:
        p, rows = self._last, self._metrics
        self._metrics = []
        self._last_flush = time.monotonic()
        if rows:
            with session_scope() as db:
                # A resumed run repeats steps after its saved state: the latest value wins.
                db.execute(delete(JobMetric).where(JobMetric.job_id == self.job_id,
                                                   JobMetric.step >= rows[0]["step"]))
                db.execute(JobMetric.__table__.insert(), rows)
        values: dict[str, Any] = {"heartbeat_at": now()}
        if p is not None:
            values.update(progress_step=p.step, loss=float(p.loss),
                          images_per_second=float(p.images_per_second))
        self._update(values)

    def should_stop(self) -> bool:
        if not self._stop and time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()
        return self._stop

    def on_log(self, message: str) -> None:
        # Tenants read these lines: training code may name server paths (the base model's).
        with session_scope() as db:
            db.add(JobLogLine(job_id=self.job_id, created_at=now(),
                              message=scrub(message)[:4000]))

    def on_checkpoint(self, step: int, files: list[Path]) -> None:
        prefix = checkpoint_prefix(self.org_id, self.job_id, step)
        records = []
        for path in files:
            with path.open("rb") as f:
                self.storage.put(prefix + path.name, f, "application/octet-stream")
            records.append({"name": path.name, "key": prefix + path.name,
                            "bytes": path.stat().st_size, "sha256": file_sha256(path)})
        total = sum(r["bytes"] for r in records)
        with session_scope() as db:
            row = db.scalar(select(Checkpoint).where(Checkpoint.job_id == self.job_id,
                                                     Checkpoint.step == step))
            if row is None:  # a resumed run re-saving a step replaces, never duplicates
                db.add(Checkpoint(org_id=self.org_id, job_id=self.job_id, step=step,
                                  files=records, bytes=total))
            else:
                row.files, row.bytes = records, total
        signals.notify(self.job_id)
        self.on_log(f"checkpoint saved at step {step} ({total / 1e6:.2f} MB)")

    def on_validation(self, step: int, images: list[ValidationImageFile]) -> None:
        rows = []
        for img in images:
            key = validation_key(self.org_id, self.job_id, step, img.prompt_index, img.index)
            with img.path.open("rb") as f:
                self.storage.put(key, f, "image/webp")
            rows.append(ValidationImage(
                org_id=self.org_id, job_id=self.job_id, step=step, prompt_index=img.prompt_index,
                image_index=img.index, prompt=img.prompt, seed=img.seed, storage_key=key,
                bytes=img.path.stat().st_size))
        with session_scope() as db:
            db.execute(delete(ValidationImage).where(ValidationImage.job_id == self.job_id,
                                                     ValidationImage.step == step))
            db.add_all(rows)
        signals.notify(self.job_id)

    def on_training_state(self, step: int, path: Path) -> None:
        upload_state(self.storage, self.org_id, self.job_id, step, path)
        with session_scope() as db:
            db.execute(update(TrainingJob).where(self._owned()).values(resume_step=step)
                       .execution_options(synchronize_session=False))
