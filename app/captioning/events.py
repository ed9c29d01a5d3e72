"""A caption job's event stream: the training jobs' SSE machinery (app/jobs/events.py) with a
reader of its own. Events: ``progress`` {done, total, gpu_seconds} and ``status``."""

from __future__ import annotations

from app.core.db import session_scope
from app.jobs.feeds import Snapshot
from app.models import CaptionJob


def read_caption_snapshot(job_id: str) -> Snapshot | None:
    with session_scope(api=True) as db:
        job = db.get(CaptionJob, job_id)
        if job is None:
            return None
        progress = {"done": job.progress_done, "total": job.progress_total,
                    "gpu_seconds": round(job.gpu_seconds or 0.0, 1)}
        return Snapshot(job.status, job.error, job.progress_done, progress, (), ())
