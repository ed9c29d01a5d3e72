"""Job state machine. Every transition is one conditional UPDATE, so a cancel racing a start,
or a message delivered twice, cannot corrupt a job: the loser's UPDATE matches no row.

    queued -> running -> succeeded -> finalized
    queued|running -> cancelling -> cancelled      (a queued job goes straight to cancelled)
    running -> failed
    running -> queued                               (worker lost; resumes from saved state)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import TrainingJob

ACTIVE = ("queued", "running", "cancelling")
TERMINAL = ("succeeded", "finalized", "cancelled", "failed")
FINALIZABLE = ("succeeded", "cancelled")


def now() -> datetime:
    return datetime.now(UTC)


def transition(
    db: Session, job_id: str, from_statuses: Iterable[str], to_status: str, **values: Any
) -> bool:
    """Move the job to ``to_status`` only if it is in ``from_statuses``; True when it moved."""
    result = db.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status.in_(tuple(from_statuses)))
        .values(status=to_status, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
