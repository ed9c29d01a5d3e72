"""Per-org quotas (storage bytes, monthly GPU seconds, concurrent jobs) and usage figures.

Concurrency is enforced where jobs are dispatched (a queued job simply waits for a slot), so
it is reported here but never refused; storage and GPU time are refused with an error that
names the limit and the numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import AppError
from app.core.usage import storage_bytes
from app.models import Organization, TrainingJob

HOLDING_GPU = ("running", "cancelling")  # a stopping job still holds its GPU


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
    return float(db.scalar(select(func.coalesce(func.sum(TrainingJob.gpu_seconds), 0.0)).where(
        TrainingJob.org_id == org_id, TrainingJob.created_at >= start)) or 0.0)


def job_counts(db: Session, org_id: str) -> dict[str, int]:
    rows = db.execute(select(TrainingJob.status, func.count()).where(
        TrainingJob.org_id == org_id,
        TrainingJob.status.in_(("queued", *HOLDING_GPU))).group_by(TrainingJob.status)).all()
    by_status = {status: int(n) for status, n in rows}
    return {"queued": by_status.get("queued", 0),
            "running": sum(by_status.get(s, 0) for s in HOLDING_GPU)}


def free_job_slots(db: Session, org: Organization) -> int:
    """How many more of the org's jobs may start now (for the dispatcher)."""
    return max(0, org.max_concurrent_jobs - job_counts(db, org.id)["running"])


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


def check_storage(db: Session, org: Organization, extra_bytes: int) -> int:
    """Refuse ``extra_bytes`` more when the org would go over its storage limit (413);
    returns the bytes used now."""
    used, limit = storage_bytes(db, org.id), org.storage_limit_bytes
    if used + extra_bytes <= limit:
        return used
    raise StorageQuotaExceeded(
        f"Storage quota (storage_limit_bytes) exceeded: {used} bytes used + {extra_bytes} "
        f"requested > {limit} allowed. Delete datasets, checkpoints or models to free space.",
        extra={"quota": "storage_limit_bytes", "used": used, "limit": limit,
               "requested": extra_bytes},
    )


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
