"""Run one training job: claim it, fetch its data, train, report, and end it in the right state."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.core.settings import get_settings
from app.integrations import quotas
from app.jobs.dispatch import dispatch_soon
from app.jobs.notify import job_status_changed
from app.jobs.state import finish, now
from app.models import BaseModel, JobLogLine, TrainingJob
from app.storage.factory import get_storage
from worker.runner.claim import claim_queued
from worker.runner.error_report import new_error_id, summary
from worker.runner.reporter import JobReporter
from worker.runner.scratch import fetch_snapshot, reset_dir
from worker.runner.state_sync import restore_state

log = logging.getLogger("atelier.runner")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim(job_id: str, worker_id: str) -> dict[str, Any] | None:
    with session_scope() as db:
        job = claim_queued(db, TrainingJob, job_id, worker_id, _not_started, lambda job: {
            "gpu_seconds_reserved": TrainingJob.gpu_seconds
            + quotas.expected_gpu_seconds(job.total_steps, job.resume_step or 0)})
        if job is None:
            return None
        base = db.scalar(select(BaseModel).where(BaseModel.key == job.base_model))
        first_attempt = job.attempts == 1
        db.add(JobLogLine(job_id=job_id, created_at=now(), message=(
            f"attempt {job.attempts} started")))  # the worker's name is not the tenant's business
        log.info("job %s attempt %s started on %s", job_id, job.attempts, worker_id)
        if first_attempt:
            job_status_changed(db, job, "running")
        return {"org_id": job.org_id, "config": job.config, "snapshot": job.dataset_snapshot,
                "model_source": base.source if base else None, "base_model": job.base_model,
                "gpu_seconds": job.gpu_seconds, "name": job.name}


def _not_started(db: Session, job: TrainingJob, outcome: str, why: str) -> None:
    """Tell the tenant why the claim did not start the job: a notice when it failed, a log
    line while it waits."""
    if outcome == "failed":
        job_status_changed(db, job, "failed")
    else:
        db.add(JobLogLine(job_id=job.id, created_at=now(), message=f"waiting to start: {why}"))


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


def _finish(job_id: str, worker_id: str, status: str, gpu_seconds: float,
            error: str | None = None) -> str:
    """End the run with a conditional update (app/jobs/state.py ``finish``): a cancel that
    landed first turns any outcome into ``cancelled``. Returns the state the job ended in."""
    with session_scope() as db:
        values: dict[str, Any] = {"finished_at": now(), "heartbeat_at": now(),
                                  "gpu_seconds": gpu_seconds}
        if error:
            values["error"] = error
        ended = finish(db, job_id, worker_id, status, **values)
        if ended:
            job = db.get(TrainingJob, job_id)
            assert job is not None
            job_status_changed(db, job, ended)
        return ended or status


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
    reporter = JobReporter(job_id, claim["org_id"], worker_id, storage,
                           gpu_seconds=claim["gpu_seconds"])
    reporter.start()
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
        outcome = _finish(job_id, worker_id, "cancelled" if result.stopped else "succeeded",
                          reporter.gpu_used(), reporter.stop_reason)
    except Exception as exc:
        reporter.close()
        # The traceback goes to the worker's log only; tenants get a scrubbed summary and the
        # same error id (worker/runner/error_report.py).
        error_id = new_error_id()
        log.exception("job %s failed (error id %s)", job_id, error_id)
        reporter.on_log(f"training failed: {summary(exc)} (error id {error_id})")
        outcome = _finish(job_id, worker_id, "failed", reporter.gpu_used(),
                          f"{user_facing_error(exc)} (error id {error_id})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        dispatch_soon()  # this GPU is free: send the next fair job
    return outcome
