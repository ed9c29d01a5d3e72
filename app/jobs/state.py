"""Job state machine. Every transition is one conditional UPDATE, so a cancel racing a start,
or a message delivered twice, cannot corrupt a job: the loser's UPDATE matches no row.

    queued -> running -> succeeded -> finalized
    queued|running -> cancelling -> cancelled      (a queued job goes straight to cancelled)
    running -> failed
    running -> queued                               (worker lost; resumes from saved state)

States never go backwards, and a cancel and a finish race cleanly (``finish``):
- a cancel that lands first (``running -> cancelling``, answered 200) wins: the worker's
  finish can then only move ``cancelling -> cancelled``, whatever the training's outcome;
- a finish that lands first wins: the cancel's ``running -> cancelling`` matches no row and
  the cancel answers 409 "Job already succeeded" (or failed/cancelled).
A job the worker stops for the org's GPU quota ends ``cancelled`` with ``error`` saying
"GPU quota reached: ..." (its saved checkpoints stay finalizable).

Caption jobs (app/captioning) follow the same machine without ``finalized``: ``model`` names
the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import CaptionJob, TrainingJob

QueuedJob = TrainingJob | CaptionJob  # the kinds of job the GPU queue runs

ACTIVE = ("queued", "running", "cancelling")
TERMINAL = ("succeeded", "finalized", "cancelled", "failed")
FINALIZABLE = ("succeeded", "cancelled")


def now() -> datetime:
    return datetime.now(UTC)


def transition(
    db: Session, job_id: str, from_statuses: Iterable[str], to_status: str, *,
    model: type[QueuedJob] = TrainingJob, **values: Any
) -> bool:
    """Move the job to ``to_status`` only if it is in ``from_statuses``; True when it moved."""
    result = db.execute(
        update(model)
        .where(model.id == job_id, model.status.in_(tuple(from_statuses)))
        .values(status=to_status, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(db: Session, job_id: str, worker_id: str, outcome: str, *,
           model: type[QueuedJob] = TrainingJob, **values: Any) -> str | None:
    """The worker's end of a run: ``outcome`` (succeeded, failed or cancelled) from ``running``,
    else ``cancelled`` from ``cancelling`` (a cancel answered 200 came first). Only the worker
    that owns the job moves it. Returns the state it ended in, or None when it was not ours."""
    owned = (model.id == job_id) & (model.worker_id == worker_id)
    sources = ["running", "cancelling"] if outcome == "cancelled" else ["running"]
    # A cancel that came first ends the job cancelled, without the run's failure message.
    plain = {k: v for k, v in values.items() if k != "error" or outcome == "cancelled"}
    for status, from_statuses, vals in ((outcome, sources, values),
                                        ("cancelled", ["cancelling"], plain)):
        moved = db.execute(
            update(model).where(owned, model.status.in_(from_statuses))
            .values(status=status, **vals).execution_options(synchronize_session=False))
        if moved.rowcount:  # type: ignore[attr-defined]
            return status
    return None
