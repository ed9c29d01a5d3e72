"""Server-Sent Events for a job: progress, checkpoint, validation and status, as they happen.

The database is the source (it is the truth, and it works the same on SQLite and PostgreSQL).
The job's feed (app/jobs/feeds.py) reads it once per change for every stream of the job in this
process, waking on the worker's Redis pub/sub message (full stack) or polling; each stream sends
only what changed for it. It ends once the job has ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from app.core.stream_limits import Lease
from app.jobs import feeds
from app.jobs.feeds import Reader, Snapshot, read_snapshot

POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_STREAM_S = 6 * 3600


def sse(event: str, data: dict[str, Any], event_id: int) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@dataclass
class _Seen:
    status: str | None = None
    step: int = -1
    progress: dict[str, Any] = field(default_factory=dict)
    checkpoints: set[int] = field(default_factory=set)
    validation: set[int] = field(default_factory=set)

    def news(self, snap: Snapshot) -> list[tuple[str, dict[str, Any]]]:
        """What changed since this stream last looked, in the order events are sent."""
        out: list[tuple[str, dict[str, Any]]] = []
        # Any change counts (step, phase n/N, GPU seconds), so a live job looks live.
        if snap.progress != self.progress and snap.status != "queued":
            self.step, self.progress = snap.step, snap.progress
            out.append(("progress", snap.progress))
        for step, size in snap.checkpoints:
            if step not in self.checkpoints:
                self.checkpoints.add(step)
                out.append(("checkpoint", {"step": step, "bytes": size}))
        for step, count in snap.validation:
            if step not in self.validation:
                self.validation.add(step)
                out.append(("validation", {"step": step, "images": count}))
        if snap.status != self.status:
            self.status = snap.status
            out.append(("status", {"status": snap.status, "error": snap.error}))
        return out


async def stream(job_id: str, *, poll_s: float = POLL_S, lease: Lease | None = None,
                 reader: Reader = read_snapshot) -> AsyncIterator[str]:
    """Async: an open stream waits on the event loop, holding no worker thread, database
    session or pooled connection. ``lease`` (its slot under the stream caps) is released when
    the stream ends for any reason, the client going away included (the response task is
    cancelled and ``finally`` runs). ``reader`` reads the job (a caption job's is
    app/captioning/events.py)."""
    seen = _Seen()
    event_id = version = 0
    started = last_sent = time.monotonic()
    feed = feeds.join(job_id, poll_s, reader)
    try:
        yield "retry: 2000\n\n"
        while time.monotonic() - started < MAX_STREAM_S:
            newer = await feed.wait_newer(version, KEEPALIVE_S)
            if newer == version and not feed.running:
                return  # the feed stopped without news: nothing more will come
            if newer != version:
                version, snap = newer, feed.snapshot
                if snap is None:
                    return  # the job is gone
                for name, data in seen.news(snap):
                    event_id += 1
                    yield sse(name, {"job_id": job_id, **data}, event_id)
                    last_sent = time.monotonic()
                if snap.ended:
                    return
            if time.monotonic() - last_sent >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if lease is not None and lease.due():
                await anyio.to_thread.run_sync(lease.renew_if_due)
    finally:
        feeds.leave(feed)
        if lease is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lease.release)
