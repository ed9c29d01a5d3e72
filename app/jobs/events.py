"""Server-Sent Events for a job: progress, checkpoint, validation and status, as they happen.

The database is the source (it is the truth, and it works the same on SQLite and PostgreSQL);
the stream reads it and sends only what changed. With Redis (full stack) it waits for the
worker's pub/sub wake-up between reads, else it polls. It ends once the job has ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from sqlalchemy import func, select

from app.core.db import session_scope
from app.jobs import signals
from app.jobs.rendering import eta_seconds
from app.jobs.state import TERMINAL
from app.models import Checkpoint, TrainingJob, ValidationImage

POLL_S = 0.5
WAKEUP_WAIT_S = 2.0  # with pub/sub: the longest wait between reads if no wake-up comes
KEEPALIVE_S = 15.0
MAX_STREAM_S = 6 * 3600


def sse(event: str, data: dict[str, Any], event_id: int) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def stream(job_id: str, *, poll_s: float = POLL_S) -> Iterator[str]:
    seen_status: str | None = None
    seen_step = -1
    seen_checkpoints: set[int] = set()
    seen_validation: set[int] = set()
    event_id = 0
    started = last_sent = time.monotonic()
    yield "retry: 2000\n\n"
    wait = _waiter(job_id, poll_s)
    while time.monotonic() - started < MAX_STREAM_S:
        out: list[tuple[str, dict[str, Any]]] = []
        with session_scope() as db:
            job = db.get(TrainingJob, job_id)
            if job is None:
                return
            if job.progress_step != seen_step and job.status != "queued":
                seen_step = job.progress_step
                out.append(("progress", {"step": job.progress_step, "total_steps":
                            job.total_steps, "loss": job.loss, "eta_seconds": eta_seconds(job)}))
            for step, size in db.execute(select(Checkpoint.step, Checkpoint.bytes).where(
                    Checkpoint.job_id == job_id).order_by(Checkpoint.step)):
                if step not in seen_checkpoints:
                    seen_checkpoints.add(step)
                    out.append(("checkpoint", {"step": step, "bytes": size}))
            for step, count in db.execute(select(ValidationImage.step, func.count()).where(
                    ValidationImage.job_id == job_id).group_by(ValidationImage.step)
                    .order_by(ValidationImage.step)):
                if step not in seen_validation:
                    seen_validation.add(step)
                    out.append(("validation", {"step": step, "images": count}))
            if job.status != seen_status:
                seen_status = job.status
                out.append(("status", {"status": job.status, "error": job.error}))
            ended = job.status in TERMINAL
        for name, data in out:
            event_id += 1
            yield sse(name, {"job_id": job_id, **data}, event_id)
            last_sent = time.monotonic()
        if ended:
            wait(close=True)
            return
        if time.monotonic() - last_sent > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        wait()


def _waiter(job_id: str, poll_s: float) -> Callable[..., None]:
    """Sleep until the job may have changed: a Redis wake-up if we can subscribe, else poll."""
    r = signals.client()
    pubsub = None
    if r is not None:
        try:
            pubsub = r.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(signals.channel(job_id))
        except redis.RedisError:
            pubsub = None

    def wait(close: bool = False) -> None:
        nonlocal pubsub
        if close:
            if pubsub is not None:
                pubsub.close()
            return
        if pubsub is None:
            time.sleep(poll_s)
            return
        try:
            pubsub.get_message(timeout=WAKEUP_WAIT_S)
        except redis.RedisError:
            pubsub = None  # fall back to polling for the rest of this stream

    return wait
