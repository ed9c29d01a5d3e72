"""One reader per watched job per process, shared by all of that job's open event streams.

Fifty dashboards watching one job must not read the database fifty times per update: a feed
reads the job once per wake-up (a Redis pub/sub message from the worker, or the poll interval),
in a short session of its own in a worker thread, and keeps the latest snapshot; each stream
turns snapshot changes into its own events. Idle, a feed holds no session, connection or thread.
The feed stops when its last stream leaves or the job has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import redis
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from sqlalchemy import func, select

from app.core.db import session_scope
from app.core.settings import get_settings
from app.jobs import signals
from app.jobs.rendering import progress_out
from app.jobs.state import TERMINAL
from app.models import Checkpoint, TrainingJob, ValidationImage

log = logging.getLogger("atelier.events")
WAKEUP_WAIT_S = 2.0  # with pub/sub: the longest wait between reads if no wake-up comes


@dataclass(frozen=True)
class Snapshot:
    status: str
    error: str | None
    step: int
    progress: dict[str, Any]
    checkpoints: tuple[tuple[int, int], ...]  # (step, bytes)
    validation: tuple[tuple[int, int], ...]  # (step, images)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


def read_snapshot(job_id: str) -> Snapshot | None:
    """One short transaction; None when the job is gone."""
    with session_scope(api=True) as db:
        job = db.get(TrainingJob, job_id)
        if job is None:
            return None
        checkpoints = db.execute(select(Checkpoint.step, Checkpoint.bytes).where(
            Checkpoint.job_id == job_id).order_by(Checkpoint.step)).all()
        validation = db.execute(select(ValidationImage.step, func.count()).where(
            ValidationImage.job_id == job_id).group_by(ValidationImage.step)
            .order_by(ValidationImage.step)).all()
        return Snapshot(
            job.status, job.error, job.progress_step,
            progress_out(job).model_dump(mode="json"),
            tuple((int(s), int(b)) for s, b in checkpoints),
            tuple((int(s), int(n)) for s, n in validation),
        )


Reader = Callable[[str], "Snapshot | None"]  # one short read of a job (caption jobs have theirs)


class Feed:
    def __init__(self, job_id: str, poll_s: float, reader: Reader = read_snapshot) -> None:
        self.job_id, self.poll_s, self.reader = job_id, poll_s, reader
        self.snapshot: Snapshot | None = None
        self.version = 0  # bumped after every read; 0 = not read yet
        self.members = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        """The feed's version once it is newer than ``version``, or after ``timeout_s``."""
        with anyio.move_on_after(timeout_s):
            while self.version <= version and (self.running or self.version == 0):
                await self._changed.wait()
        return self.version

    def _publish(self, snapshot: Snapshot | None) -> None:
        self.snapshot, self.version = snapshot, self.version + 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        async with _waiter(self.job_id, self.poll_s) as wait:
            while True:
                try:
                    snapshot = await anyio.to_thread.run_sync(self.reader, self.job_id)
                except Exception:  # the database hiccuped: keep the streams, read again later
                    log.exception("reading job %s for its event streams failed", self.job_id)
                else:
                    self._publish(snapshot)
                    if snapshot is None or snapshot.ended:
                        return
                await wait()


_feeds: dict[tuple[int, str], Feed] = {}


def join(job_id: str, poll_s: float, reader: Reader = read_snapshot) -> Feed:
    """The job's running feed in this event loop, or a new one."""
    key = (id(asyncio.get_running_loop()), job_id)
    feed = _feeds.get(key)
    if feed is None or not feed.running:
        feed = _feeds[key] = Feed(job_id, poll_s, reader)
        feed.start()
    feed.members += 1
    return feed


def leave(feed: Feed) -> None:
    feed.members -= 1
    if feed.members <= 0:
        feed.stop()
        key = (id(asyncio.get_running_loop()), feed.job_id)
        if _feeds.get(key) is feed:
            del _feeds[key]


@asynccontextmanager
async def _waiter(job_id: str, poll_s: float) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Sleep until the job may have changed: a Redis wake-up if we can subscribe, else poll."""
    url = get_settings().redis_url
    client = aioredis.Redis.from_url(url, socket_timeout=WAKEUP_WAIT_S + 2,
                                     socket_connect_timeout=2) if url else None
    pubsub: PubSub | None = None
    if client is not None:
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(signals.channel(job_id))
        except (redis.RedisError, OSError):
            pubsub = None

    async def wait() -> None:
        nonlocal pubsub
        if pubsub is None:
            await anyio.sleep(poll_s)
            return
        try:
            await pubsub.get_message(timeout=WAKEUP_WAIT_S)
        except (redis.RedisError, OSError):
            pubsub = None  # fall back to polling for the rest of this feed

    try:
        yield wait
    finally:
        with anyio.CancelScope(shield=True):
            if pubsub is not None:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()
            if client is not None:
                with contextlib.suppress(redis.RedisError, OSError):
                    await client.aclose()
