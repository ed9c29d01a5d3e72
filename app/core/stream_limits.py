"""Caps on concurrent long-lived streams per principal and per organization.

A stream holds a *lease* in every bucket it counts against (``key:<id>``/``user:<id>`` and
``org:<id>``). Leases expire unless the stream renews them, so a process that dies mid-stream
(or a response that never started) frees its slots within ``LEASE_S``; a stream that ends, or
whose client goes away, releases them at once.

Redis (a sorted set per bucket: member = lease id, score = expiry) when ``redis_url`` is set, so
every API replica shares one count; otherwise an in-process table, exact for one process. If
Redis fails, counting falls back to the process for that stream rather than refusing it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

import redis

from app.core.errors import TooManyRequests
from app.core.settings import get_settings

log = logging.getLogger("atelier.streams")
LEASE_S = 60.0
RENEW_EVERY_S = LEASE_S / 3
RETRY_AFTER_S = 5

# All buckets checked, then all taken, in one step: a stream counts everywhere or nowhere.
_ACQUIRE = """
local now, expiry, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local cap = tonumber(ARGV[3 + i])
  if cap > 0 and redis.call('ZCARD', k) >= cap then return i end
end
for _, k in ipairs(KEYS) do
  redis.call('ZADD', k, expiry, member)
  redis.call('EXPIRE', k, math.ceil(expiry - now) + 1)
end
return 0
"""


@dataclass
class _Memory:
    lock: threading.Lock = field(default_factory=threading.Lock)
    leases: dict[str, dict[str, float]] = field(default_factory=dict)  # bucket -> lease -> exp

    def acquire(self, buckets: list[tuple[str, int]], member: str, now: float) -> int:
        with self.lock:
            for i, (bucket, cap) in enumerate(buckets, start=1):
                live = {m: e for m, e in self.leases.get(bucket, {}).items() if e > now}
                self.leases[bucket] = live
                if cap > 0 and len(live) >= cap:
                    return i
            for bucket, _ in buckets:
                self.leases[bucket][member] = now + LEASE_S
            return 0

    def renew(self, buckets: list[str], member: str, now: float) -> None:
        with self.lock:
            for bucket in buckets:
                if member in self.leases.get(bucket, {}):
                    self.leases[bucket][member] = now + LEASE_S

    def release(self, buckets: list[str], member: str) -> None:
        with self.lock:
            for bucket in buckets:
                live = self.leases.get(bucket, {})
                live.pop(member, None)
                if not live:
                    self.leases.pop(bucket, None)

    def count(self, bucket: str) -> int:
        now = time.time()
        with self.lock:
            return sum(1 for e in self.leases.get(bucket, {}).values() if e > now)


memory = _Memory()


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _name(bucket: str) -> str:
    return f"atelier:streams:{bucket}"


@dataclass
class Lease:
    """One open stream's slots; renew while streaming, release once at the end."""

    buckets: list[str]
    member: str
    redis_url: str | None
    renewed: float = field(default_factory=time.monotonic)
    released: bool = False

    def due(self) -> bool:
        return not self.released and time.monotonic() - self.renewed >= RENEW_EVERY_S

    def renew_if_due(self) -> None:
        if not self.due():
            return
        self.renewed = time.monotonic()
        now = time.time()
        if self.redis_url is None:
            memory.renew(self.buckets, self.member, now)
            return
        try:
            pipe = _redis(self.redis_url).pipeline()
            for bucket in self.buckets:
                pipe.zadd(_name(bucket), {self.member: now + LEASE_S}, xx=True)
                pipe.expire(_name(bucket), int(LEASE_S) + 1)
            pipe.execute()
        except redis.RedisError:
            log.warning("stream lease %s not renewed (Redis unavailable)", self.member)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.redis_url is None:
            memory.release(self.buckets, self.member)
            return
        try:
            pipe = _redis(self.redis_url).pipeline()
            for bucket in self.buckets:
                pipe.zrem(_name(bucket), self.member)
            pipe.execute()
        except redis.RedisError:  # it expires by itself within LEASE_S
            log.warning("stream lease %s not released (Redis unavailable)", self.member)


def acquire(actor: tuple[str, str], org_id: str) -> Lease:
    """Take a slot for ``actor`` (("key"|"user", id)) and its org, or raise 429."""
    settings = get_settings()
    buckets = [(f"{actor[0]}:{actor[1]}", settings.stream_max_per_principal),
               (f"org:{org_id}", settings.stream_max_per_org)]
    member = secrets.token_hex(8)
    now = time.time()
    url: str | None = settings.redis_url or None
    refused = 0
    if url is not None:
        try:
            args = [now, now + LEASE_S, member, *(cap for _, cap in buckets)]
            refused = int(_redis(url).eval(_ACQUIRE, len(buckets),
                                           *(_name(b) for b, _ in buckets), *args))
        except redis.RedisError:
            log.warning("stream caps: Redis unavailable, counting in this process")
            url = None
    if url is None:
        refused = memory.acquire(buckets, member, now)
    if refused:
        what = "API key or user" if refused == 1 else "organization"
        cap = buckets[refused - 1][1]
        raise TooManyRequests(
            f"Too many open event streams: at most {cap} per {what}. Close one, or retry "
            f"in {RETRY_AFTER_S} s.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            extra={"limit": "streams_per_principal" if refused == 1 else "streams_per_org",
                   "limit_value": cap, "retry_after": RETRY_AFTER_S},
        )
    return Lease([b for b, _ in buckets], member, url)
