"""Wake-ups for live job streams over Redis pub/sub (full stack).

The database stays the truth: a message only says "job X changed, look again", so a lost
message costs at most one poll interval. Without Redis (embedded default) streams just poll.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis

from app.core.settings import get_settings

log = logging.getLogger("atelier.signals")


def channel(job_id: str) -> str:
    return f"atelier:job:{job_id}"


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def client() -> redis.Redis | None:
    url = get_settings().redis_url
    return _client(url) if url else None


def notify(job_id: str) -> None:
    """Tell live streams that the job changed; never fails the caller."""
    r = client()
    if r is None:
        return
    try:
        r.publish(channel(job_id), b"1")
    except redis.RedisError:
        log.warning("could not publish a wake-up for job %s", job_id)
