"""ORM rows -> API shapes for jobs and their checkpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from app.core.tenancy import org_rows
from app.jobs.schemas import JobOut, Progress
from app.models import Checkpoint, TrainingJob, ValidationImage
from app.storage.base import Storage

URL_TTL_S = 3600
# A job as read by list pages: plain rows (building and tracking an ORM object per job was a
# large share of a page's time), and each dataset snapshot counted in the database instead of
# loaded (every image's key and caption) only to be counted. job_out() renders both alike.
Job = TrainingJob | Row[Any]


# The caller's jobs as plain rows: bind ``org_id``. Built once (constructing it was 0.15 ms a
# request).
JOB_ROWS = org_rows(TrainingJob, without=("dataset_snapshot",)).add_columns(
    func.json_array_length(TrainingJob.dataset_snapshot).label("item_count"))
JOB_ROWS_OF_STATUS = JOB_ROWS.where(TrainingJob.status == bindparam("status"))


def eta_seconds(job: Job) -> float | None:
    """Seconds left from the worker's smoothed rate (worker/runner/reporter.py); None while
    there is no rate yet or the job is in a phase before training (estimating)."""
    if job.status != "running" or not job.images_per_second:
        return None
    if job.phase in ("loading_model", "caching_latents", "rendering_step0"):
        return None
    per_step = (int(job.config.get("train_batch_size", 1))
                * int(job.config.get("gradient_accumulation_steps", 1))) / job.images_per_second
    left = max(job.total_steps - job.progress_step, 0) * per_step
    if job.validation_seconds and job.config.get("validation_prompts"):
        left += validations_after(job) * job.validation_seconds
    return round(left, 1)


def validations_after(job: Job) -> int:
    """Validations still due after the current step (every N steps, and the last step)."""
    every = job.config.get("validate_every_n_steps")
    done, total = job.progress_step, job.total_steps
    due = set(range((done // every + 1) * every, total + 1, every)) if every else set()
    if total > done:
        due.add(total)
    return len(due)


def progress_fields(job: Job) -> dict[str, Any]:
    """``Progress``'s fields, plain (see ``job_fields``)."""
    total = job.total_steps or 1
    running = job.status in ("running", "cancelling")
    return {"step": job.progress_step, "total_steps": job.total_steps, "loss": job.loss,
            "eta_seconds": eta_seconds(job), "images_per_second": job.images_per_second,
            "percent": round(100.0 * job.progress_step / total, 1),
            "phase": job.phase if running else None,
            "phase_done": job.phase_done if running else None,
            "phase_total": job.phase_total if running else None,
            "gpu_seconds": round(job.gpu_seconds or 0.0, 1)}


def progress_out(job: Job) -> Progress:
    return Progress.model_validate(progress_fields(job))


def job_fields(job: Job, queue_position: int | None = None) -> dict[str, Any]:
    """``JobOut``'s fields as plain values. A list page writes these with orjson: a model per
    job was most of the page's rendering time. tests/api/test_fast_read_routes.py holds the
    page equal to ``Page[JobOut]``'s output for jobs in every state."""
    return {
        "id": job.id, "name": job.name, "type": job.type, "status": job.status,
        "base_model": job.base_model, "architecture": job.architecture,
        "template": job.template, "dataset_id": job.dataset_id, "config": job.config,
        "progress": progress_fields(job),
        "queue_position": queue_position if job.status == "queued" else None,
        "error": job.error, "attempts": job.attempts, "gpu_seconds": round(job.gpu_seconds, 2),
        "retry_of": job.retry_of_id, "item_count": _item_count(job),
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def job_out(job: Job, queue_position: int | None = None) -> JobOut:
    return JobOut.model_validate(job_fields(job, queue_position))


def _item_count(job: Job) -> int:
    return job.item_count if isinstance(job, Row) else len(job.dataset_snapshot)


# Built once (see app.core.tenancy._by_id); the job was loaded within the caller's org.
_CHECKPOINTS = select(Checkpoint.step, Checkpoint.bytes, Checkpoint.files).where(
    Checkpoint.job_id == bindparam("job_id"))
_VALIDATION_IMAGES = (
    select(ValidationImage.step, ValidationImage.prompt, ValidationImage.prompt_index,
           ValidationImage.image_index, ValidationImage.seed, ValidationImage.storage_key)
    .where(ValidationImage.job_id == bindparam("job_id"))
    .order_by(ValidationImage.prompt_index, ValidationImage.image_index))


def checkpoint_fields(db: Session, storage: Storage, job: TrainingJob) -> list[dict[str, Any]]:
    """``CheckpointOut``'s fields as plain values, step by step (written with orjson, as list
    pages of jobs are: see ``job_fields``); rows, not ORM objects, are read for them."""
    conn = db.connection()
    checkpoints = {c.step: c for c in conn.execute(_CHECKPOINTS, {"job_id": job.id})}
    images: dict[int, list[Row[Any]]] = {}
    for img in conn.execute(_VALIDATION_IMAGES, {"job_id": job.id}):
        images.setdefault(img.step, []).append(img)
    rows = []
    for step in sorted(set(checkpoints) | set(images)):
        ckpt = checkpoints.get(step)
        rows.append({
            "step": step,
            "bytes": ckpt.bytes if ckpt else 0,
            "files": [{"name": f["name"], "bytes": int(f["bytes"]),
                       "url": storage.presign_get(f["key"], URL_TTL_S, filename=f["name"])}
                      for f in (ckpt.files if ckpt else [])],
            "validation_images": [{
                "prompt": i.prompt, "prompt_index": i.prompt_index, "index": i.image_index,
                "seed": i.seed, "url": storage.presign_get(i.storage_key, URL_TTL_S)}
                for i in images.get(step, [])],
        })
    return rows
