"""What happens when a job changes state: webhooks (job.started, job.succeeded, ...)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.integrations.webhooks import emit_event
from app.jobs import signals
from app.models import TrainingJob

EVENTS = {"running": "job.started", "succeeded": "job.succeeded", "failed": "job.failed",
          "cancelled": "job.cancelled", "finalized": "job.finalized"}


def job_status_changed(db: Session, job: TrainingJob, status: str) -> None:
    job_id = job.id
    defer(db, lambda: signals.notify(job_id))  # live streams look again once this commits
    event = EVENTS.get(status)
    if event is None:
        return
    emit_event(db, job.org_id, event, {
        "job_id": job.id, "name": job.name, "type": job.type, "status": status,
        "error": job.error, "step": job.progress_step, "total_steps": job.total_steps,
    })
