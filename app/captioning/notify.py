"""What happens when a caption job changes state: live streams look again once it commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.jobs import signals
from app.models import CaptionJob


def caption_job_status_changed(db: Session, job: CaptionJob) -> None:
    job_id = job.id
    defer(db, lambda: signals.notify(job_id))
