"""Run one training job: claim it, fetch its data, train, report, and end it in the right state."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import traceback
import uuid
from typing import Any

from sqlalchemy import select, update

from app.core.db import session_scope
from app.core.settings import get_settings
from app.jobs.dispatch import dispatch_soon
from app.jobs.notify import job_status_changed
from app.jobs.state import now, transition
from app.models import BaseModel, JobLogLine, TrainingJob
from app.storage.factory import get_storage
from worker.runner.reporter import JobReporter
from worker.runner.scratch import fetch_snapshot, reset_dir
from worker.runner.state_sync import restore_state

log = logging.getLogger("atelier.runner")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim(job_id: str, worker_id: str) -> dict[str, Any] | None:
    with session_scope() as db:
        job = db.get(TrainingJob, job_id)
        if job is None:
            return None
        claimed = transition(
            db, job_id, ["queued"], "running", worker_id=worker_id, heartbeat_at=now(),
            started_at=job.started_at or now(), attempts=TrainingJob.attempts + 1,
            dispatched_at=None,
        )
        if not claimed:
            return None  # cancelled meanwhile, or a duplicate message: nothing to do
        db.refresh(job)
        base = db.scalar(select(BaseModel).where(BaseModel.key == job.base_model))
        first_attempt = job.attempts == 1
        db.add(JobLogLine(job_id=job_id, created_at=now(), message=(
            f"attempt {job.attempts} started on {worker_id}")))
        if first_attempt:
            job_status_changed(db, job, "running")
        return {"org_id": job.org_id, "config": job.config, "snapshot": job.dataset_snapshot,
                "model_source": base.source if base else None, "base_model": job.base_model,
                "name": job.name}


def user_facing_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower():
        return ("Training ran out of GPU memory. Lower the resolution or batch size, or enable "
                "gradient checkpointing, then retry.")
    if isinstance(exc, FileNotFoundError | OSError) and "model" in text.lower():
        return "The base model's files could not be loaded. Contact support with the job id."
    if "sha256" in text:
        return "A dataset image changed or went missing in storage. Re-upload and retry."
    return "Training failed unexpectedly. The logs have details; retry, or contact support."


def _finish(job_id: str, worker_id: str, status: str, elapsed: float,
            error: str | None = None) -> None:
    with session_scope() as db:
        owned = ["running", "cancelling"]
        values: dict[str, Any] = {"finished_at": now(), "heartbeat_at": now()}
        if error:
            values["error"] = error
        moved = db.execute(
            update(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.worker_id == worker_id,
                                      TrainingJob.status.in_(owned))
            .values(status=status, gpu_seconds=TrainingJob.gpu_seconds + elapsed, **values)
            .execution_options(synchronize_session=False)).rowcount
        if moved:
            job = db.get(TrainingJob, job_id)
            assert job is not None
            job_status_changed(db, job, status)


def run_job(job_id: str) -> str:
    """Returns the state the job ended in on this worker ("skipped" if not claimed)."""
    worker_id = worker_identity()
    claim = _claim(job_id, worker_id)
    if claim is None:
        return "skipped"
    from worker.training.config import parse_config
    from worker.training.run import run_training

    settings = get_settings()
    storage = get_storage()
    assert settings.scratch_dir is not None
    workdir = reset_dir(settings.scratch_dir / "jobs" / job_id)
    reporter = JobReporter(job_id, claim["org_id"], worker_id, storage)
    reporter.start()
    started = time.monotonic()
    outcome = "failed"
    try:
        if not claim["model_source"]:
            raise FileNotFoundError(f"base model {claim['base_model']} is not registered")
        resumed = restore_state(storage, claim["org_id"], job_id, workdir / "state")
        if resumed is not None:
            reporter.on_log(f"resuming from the training state saved at step {resumed}")
        examples = fetch_snapshot(storage, settings.scratch_dir / "cache", claim["snapshot"])
        result = run_training(parse_config(claim["config"]), examples, reporter,
                              model_source=claim["model_source"], output_dir=workdir,
                              output_name=claim["name"])
        reporter.close()
        if reporter.lost and not result.stopped:
            return "lost"
        outcome = "cancelled" if result.stopped else "succeeded"
        _finish(job_id, worker_id, outcome, time.monotonic() - started)
    except Exception as exc:
        reporter.close()
        reporter.on_log("training failed:\n" + traceback.format_exc())
        _finish(job_id, worker_id, "failed", time.monotonic() - started, user_facing_error(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        dispatch_soon()  # this GPU is free: send the next fair job
    return outcome
