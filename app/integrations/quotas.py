"""Per-org limits (storage bytes, concurrent jobs, monthly GPU seconds, per-job size) and usage.

How each limit holds under any number of concurrent requests — one rule: **do the slow work
first, then take the org's lock (``app.core.locking.lock_org``), check against the current
total, record, commit.** Two requests of one org can never both pass a check that only one
of them fits, because the second one's check runs after the first one's rows are committed.

- **Storage.** An upload receives, decodes, hashes and writes its objects *before* the lock;
  then ``Ingest.record`` locks, sums the org's bytes from the rows and inserts the items that
  still fit, in order. A file that no longer fits is refused and its objects deleted; when
  nothing of the request fits the answer is 413 with the numbers (``used``, ``limit``,
  ``requested``). Presigned ``complete`` goes through the same step.
- **Concurrent jobs.** Creating a job never refuses (the job waits in the queue). A worker's
  claim (``queued -> running``) locks the org and counts its running jobs; over the limit it
  puts the job back in the queue undispatched. So only ``max_concurrent_jobs`` ever run.
- **GPU time.** A job's ``gpu_seconds`` grow while it runs (the worker writes them with every
  progress flush and heartbeat), so "used this month" is live. Starting a job (the claim,
  under the lock) **reserves** its expected length: ``remaining steps x gpu_seconds_per_step``
  (setting). Free seconds = limit - used - what running jobs reserved and have not used yet.
  At the claim: no seconds left at all -> the job ends ``failed`` with "GPU quota reached: ..."
  (retry it next month); seconds left but all reserved by running jobs -> it stays ``queued``
  and starts when they end. While running, the worker stops a job once the org's usage reaches
  the limit: the job ends ``cancelled`` with ``error`` = "GPU quota reached: ...", and keeps
  every checkpoint it saved (``cancelled`` jobs can be finalized; the engine does not save a
  new checkpoint at the stop). Creating a job with the month's seconds used up is a 429.
- **Caption jobs** (app/captioning) share all of this: their ``gpu_seconds`` count in "used
  this month" (and in ``GET /v1/usage``), they count as jobs toward ``max_concurrent_jobs``,
  their claim takes the same ``start_decision``, and their worker stops them the same way at
  the limit. They reserve nothing at start: they are short, and their length per image is not
  known in advance; the running check bounds the overshoot to one batch of images.
- **Per-job size.** ``max_train_steps`` and the number of validation images a job renders are
  bounded by the plan (``max_train_steps_limit``, ``max_validation_images_limit``): 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import AppError, Unprocessable
from app.core.settings import get_settings
from app.core.usage import storage_bytes
from app.models import AuditEvent, CaptionJob, Organization, TrainingJob

HOLDING_GPU = ("running", "cancelling")  # a stopping job still holds its GPU
QUOTA_REACHED = "GPU quota reached"


class GpuQuotaExceeded(AppError):
    status, title = 429, "Quota exceeded"


class StorageQuotaExceeded(AppError):
    status, title = 413, "Storage quota exceeded"


def month_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end


def gpu_seconds_this_month(db: Session, org_id: str) -> float:
    start, _ = month_bounds()
    live = sum(float(db.scalar(select(func.coalesce(func.sum(model.gpu_seconds), 0.0)).where(
        model.org_id == org_id, model.created_at >= start)) or 0.0)
        for model in (TrainingJob, CaptionJob))
    return live + deleted_jobs_gpu_seconds(db, org_id, start)


DELETED_JOB_ACTION = "job.delete"


def deleted_jobs_gpu_seconds(db: Session, org_id: str, since: datetime) -> float:
    """Seconds of jobs created since ``since`` and deleted later (DELETE /v1/jobs/{id}): their
    ``job.delete`` audit events carry them, so deleting a job never gives GPU time back."""
    rows = db.scalars(select(AuditEvent.details).where(
        AuditEvent.org_id == org_id, AuditEvent.action == DELETED_JOB_ACTION,
        AuditEvent.created_at >= since))  # deleted after it was created, so after `since`
    total = 0.0
    for details in rows:
        try:
            created = datetime.fromisoformat(str(details.get("job_created_at")))
        except ValueError:
            continue
        if (created if created.tzinfo else created.replace(tzinfo=UTC)) >= since:
            total += float(details.get("gpu_seconds") or 0.0)
    return total


def gpu_seconds_reserved(db: Session, org_id: str, exclude_job: str | None = None) -> float:
    """Seconds running jobs set aside at start and have not used yet."""
    rows = db.execute(select(TrainingJob.id, TrainingJob.gpu_seconds_reserved,
                             TrainingJob.gpu_seconds).where(
        TrainingJob.org_id == org_id, TrainingJob.status.in_(HOLDING_GPU))).all()
    return sum(max(0.0, reserved - used) for job_id, reserved, used in rows
               if job_id != exclude_job)


def expected_gpu_seconds(total_steps: int, done_steps: int = 0) -> float:
    return max(0, total_steps - done_steps) * get_settings().gpu_seconds_per_step


def quota_reached_message(used: float, limit: int) -> str:
    _, end = month_bounds()
    return (f"{QUOTA_REACHED}: {used:.1f} of {limit} GPU seconds used this month "
            f"(monthly_gpu_seconds_limit); it resets on {end.date().isoformat()}.")


def job_counts(db: Session, org_id: str) -> dict[str, int]:
    """Queued and running jobs of the org, training and caption jobs together (one queue)."""
    by_status: dict[str, int] = {}
    for model in (TrainingJob, CaptionJob):
        for status, n in db.execute(select(model.status, func.count()).where(
                model.org_id == org_id, model.status.in_(("queued", *HOLDING_GPU)))
                .group_by(model.status)):
            by_status[status] = by_status.get(status, 0) + int(n)
    return {"queued": by_status.get("queued", 0),
            "running": sum(by_status.get(s, 0) for s in HOLDING_GPU)}


def free_job_slots(db: Session, org: Organization) -> int:
    """How many more of the org's jobs may start now (for the dispatcher)."""
    return max(0, org.max_concurrent_jobs - job_counts(db, org.id)["running"])


def start_decision(db: Session, org: Organization,
                   job: TrainingJob | CaptionJob) -> tuple[str, str]:
    """For a worker's claim, under the org's lock: ("start", ""), ("wait", why) or
    ("refuse", why). Starting reserves the job's expected GPU seconds (the caller writes
    ``gpu_seconds_reserved`` with the state change)."""
    running = job_counts(db, org.id)["running"]
    if running >= org.max_concurrent_jobs:
        return "wait", (f"{running} of {org.max_concurrent_jobs} concurrent jobs "
                        "(max_concurrent_jobs) are running")
    used, limit = gpu_seconds_this_month(db, org.id), org.monthly_gpu_seconds_limit
    if used >= limit:
        return "refuse", quota_reached_message(used, limit)
    if limit - used - gpu_seconds_reserved(db, org.id, exclude_job=job.id) <= 0:
        return "wait", "the remaining GPU seconds are reserved by running jobs"
    return "start", ""


def org_gpu_exhausted(db: Session, org_id: str) -> str | None:
    """The reason to stop a running job of the org now, or None (the worker's check)."""
    limit = db.scalar(select(Organization.monthly_gpu_seconds_limit)
                      .where(Organization.id == org_id))
    if limit is None:
        return None
    used = gpu_seconds_this_month(db, org_id)
    return quota_reached_message(used, int(limit)) if used >= limit else None


def gpu_waiting_orgs(db: Session, org_ids: set[str]) -> set[str]:
    """Orgs whose queued jobs must wait for running ones (seconds left, all reserved); an org
    with none left at all is dispatched so the claim fails its jobs with the reason."""
    waiting = set()
    for org in db.scalars(select(Organization).where(Organization.id.in_(org_ids))):
        used, limit = gpu_seconds_this_month(db, org.id), org.monthly_gpu_seconds_limit
        if used < limit and limit - used - gpu_seconds_reserved(db, org.id) <= 0:
            waiting.add(org.id)
    return waiting


def check_can_start_job(db: Session, org: Organization) -> None:
    """Refuse a new job once this month's GPU seconds reach the org's monthly limit (429)."""
    used, limit = gpu_seconds_this_month(db, org.id), org.monthly_gpu_seconds_limit
    if used < limit:
        return
    start, end = month_bounds()
    retry_after = max(1, int((end - datetime.now(UTC)).total_seconds()))
    raise GpuQuotaExceeded(
        f"Monthly GPU time quota (monthly_gpu_seconds_limit) exceeded: {used:.0f} of {limit} "
        f"GPU seconds used since {start.date().isoformat()}; it resets on "
        f"{end.date().isoformat()}.",
        headers={"Retry-After": str(retry_after)},
        extra={"quota": "monthly_gpu_seconds_limit", "used": used, "limit": limit,
               "resets_at": end.isoformat()},
    )


def validation_images(config: dict[str, Any]) -> int:
    """How many validation images a job renders: prompts x images, at step 0, every N steps
    and at the last step."""
    prompts = len(config.get("validation_prompts") or [])
    steps, every = int(config.get("max_train_steps", 0)), config.get("validate_every_n_steps")
    renders = 2 + (steps // int(every) if every else 0)
    return prompts * int(config.get("num_validation_images", 1)) * renders


def check_job_size(org: Organization, config: dict[str, Any]) -> None:
    """Refuse a job bigger than the plan allows (422 naming the limit)."""
    steps = int(config.get("max_train_steps", 0))
    if steps > org.max_train_steps_limit:
        raise Unprocessable(
            f"max_train_steps {steps} is over the plan's limit (max_train_steps_limit) of "
            f"{org.max_train_steps_limit}.",
            errors=[{"loc": ["body", "max_train_steps"], "msg": "over the plan limit"}],
            extra={"limit": "max_train_steps_limit", "value": steps,
                   "max": org.max_train_steps_limit})
    images = validation_images(config)
    if images > org.max_validation_images_limit:
        raise Unprocessable(
            f"The job would render {images} validation images (prompts x "
            "num_validation_images x renders every validate_every_n_steps); the plan's limit "
            f"(max_validation_images_limit) is {org.max_validation_images_limit}.",
            errors=[{"loc": ["body", "validate_every_n_steps"], "msg": "over the plan limit"}],
            extra={"limit": "max_validation_images_limit", "value": images,
                   "max": org.max_validation_images_limit})


def storage_refused(used: int, limit: int, requested: int) -> StorageQuotaExceeded:
    return StorageQuotaExceeded(
        f"Storage quota (storage_limit_bytes) exceeded: {used} bytes used + {requested} "
        f"requested > {limit} allowed. Delete datasets, checkpoints or models to free space.",
        extra={"quota": "storage_limit_bytes", "used": used, "limit": limit,
               "requested": requested},
    )


def check_storage(db: Session, org: Organization, extra_bytes: int) -> int:
    """Refuse ``extra_bytes`` more when the org would go over its storage limit (413);
    returns the bytes used now. An early answer only: the binding check is under the lock."""
    used, limit = storage_bytes(db, org.id), org.storage_limit_bytes
    if used + extra_bytes <= limit:
        return used
    raise storage_refused(used, limit, extra_bytes)


def usage(db: Session, org: Organization) -> dict[str, Any]:
    start, end = month_bounds()
    counts = job_counts(db, org.id)
    return {
        "storage_bytes_used": storage_bytes(db, org.id),
        "storage_bytes_limit": org.storage_limit_bytes,
        "running_jobs": counts["running"],
        "queued_jobs": counts["queued"],
        "max_concurrent_jobs": org.max_concurrent_jobs,
        "gpu_seconds_this_month": gpu_seconds_this_month(db, org.id),
        "monthly_gpu_seconds_limit": org.monthly_gpu_seconds_limit,
        "period_start": start,
        "period_end": end,
    }
