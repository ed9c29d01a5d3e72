"""Fixed-window rate limits per API key (or signed-in user) and per organization.

Redis (INCR + EXPIRE on a key per window) when ``redis_url`` is set, so every API replica shares
one count; otherwise an in-process counter, which is exact for the embedded single process.
While Redis is unreachable each replica counts in-process, so a limit never lapses.
Limits are written ``N/second|minute|hour`` (``ATELIER_RATE_LIMIT_PER_KEY``, ``..._PER_ORG``);
``off`` disables one. The check runs as an app-wide dependency, after authentication, so only
callers with valid credentials are counted: a stranger cannot exhaust an org's budget.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from app.core.deps import DB
from app.core.errors import AppError, TooManyRequests
from app.core.settings import get_settings
from app.identity.principal import SESSION_COOKIE, principal_of
from app.integrations.config import value

log = logging.getLogger("atelier.ratelimit")
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/storage/")
REDIS_RETRY_AFTER_S = 5.0
_redis_down_until = 0.0
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
          "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class Limit:
    count: int
    window_s: int


@lru_cache(maxsize=32)
def parse_limit(text: str) -> Limit | None:
    """``"600/minute"`` -> Limit(600, 60); ``"off"``, ``""`` or ``"0"`` -> None (no limit)."""
    text = text.strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    count, _, unit = text.partition("/")
    # An optional multiple before the unit: "10/15minute" is 10 per 15-minute window.
    match = re.fullmatch(r"(\d*)\s*([a-z]*)", unit.strip())
    seconds = _UNITS.get((match.group(2) if match else "") or "minute")
    if match is None or seconds is None or not count.strip().isdigit():
        raise ValueError(f"bad rate limit {text!r}; write e.g. 600/minute or 10/15minute")
    return Limit(int(count), seconds * int(match.group(1) or 1))


class MemoryCounter:
    """Per-process fixed windows; stale windows are pruned as new ones open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, window_s: int, window_start: int) -> int:
        with self._lock:
            if len(self._counts) > 10_000:
                now = int(time.time())
                self._counts = {k: v for k, v in self._counts.items() if k[1] + 3600 > now}
            n = self._counts.get((key, window_start), 0) + 1
            self._counts[(key, window_start)] = n
            return n

    def undo(self, key: str, window_start: int, times: int = 1) -> None:
        with self._lock:
            n = self._counts.get((key, window_start), 0)
            if n > 0:
                self._counts[(key, window_start)] = n - min(n, times)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


memory = MemoryCounter()


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # Short timeouts: a slow Redis must not slow every request down.
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _redis_hits(url: str, windows: list[tuple[str, int, int]]) -> list[int]:
    """INCR + EXPIRE for each (key, window_s, window_start), all in one round trip."""
    pipe = _redis(url).pipeline()
    for key, window_s, window_start in windows:
        name = f"atelier:rl:{key}:{window_start}"
        pipe.incr(name)
        pipe.expire(name, window_s + 1)  # the name carries the window, so re-arming is harmless
    replies = pipe.execute()
    return [int(n) for n in replies[::2]]


def reset() -> None:
    """Forget every in-process count and any remembered Redis outage (tests, operators)."""
    global _redis_down_until
    memory.reset()
    _redis_down_until = 0.0


def backend() -> str:
    chosen = value("rate_limit_backend").strip().lower()
    if chosen == "auto":
        return "redis" if get_settings().redis_url else "memory"
    return chosen


def _use_redis(now: float) -> bool:
    return backend() == "redis" and now >= _redis_down_until


def _redis_failed(now: float) -> None:
    # Count in-process instead of not at all: each replica still enforces the limit on its
    # own (no 5xx, and no unlimited guessing while Redis is slow or down), and skipping
    # Redis for a while keeps its timeouts off every request meanwhile.
    global _redis_down_until
    _redis_down_until = now + REDIS_RETRY_AFTER_S
    log.warning("rate limiter: Redis unavailable, counting in-process for %s s",
                REDIS_RETRY_AFTER_S, exc_info=True)


def hit(key: str, limit: Limit) -> tuple[bool, int]:
    """Count one request; (allowed, seconds until the window resets)."""
    return hit_all([(key, limit)])[0]


def hit_all(counted: list[tuple[str, Limit]]) -> list[tuple[bool, int]]:
    """Count one request against several limits at once (one Redis round trip)."""
    now = time.time()
    windows = [(key, limit.window_s, int(now // limit.window_s * limit.window_s))
               for key, limit in counted]
    counts: list[int] | None = None
    if _use_redis(now):
        try:
            counts = _redis_hits(get_settings().redis_url, windows)
        except redis.RedisError:
            _redis_failed(now)
    if counts is None:
        counts = [memory.hit(*window) for window in windows]
    return [(n <= limit.count, max(1, math.ceil(start + limit.window_s - now)))
            for n, (_, limit), (_, _, start) in zip(counts, counted, windows, strict=True)]


_UNDO = """local n = tonumber(redis.call('get', KEYS[1]) or '0')
if n > 0 then return redis.call('decrby', KEYS[1], math.min(n, tonumber(ARGV[1]))) end
return 0"""


def undo(key: str, limit: Limit, times: int = 1) -> None:
    """Take back hits of the current window (a login that succeeded is not a failure)."""
    now = time.time()
    window_start = int(now // limit.window_s * limit.window_s)
    memory.undo(key, window_start, times)  # hits counted in-process during an outage
    if not _use_redis(now):
        return
    try:
        # Never below zero, and never creating a counter that does not exist.
        _redis(get_settings().redis_url).eval(
            _UNDO, 1, f"atelier:rl:{key}:{window_start}", times)
    except redis.RedisError:
        _redis_failed(now)


def _exceeded(what: str, limit: Limit, retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        f"Rate limit exceeded: {limit.count} requests per {limit.window_s} s per {what}. "
        f"Retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after), "RateLimit-Limit": str(limit.count)},
        extra={"limit": f"per_{what}", "limit_value": limit.count, "window_s": limit.window_s,
               "retry_after": retry_after},
    )


def rate_limit(request: Request, db: Session = DB) -> None:
    """App-wide dependency: counts the request against its key (or user) and its org."""
    if request.scope["path"].startswith(EXEMPT_PREFIXES):  # request.url builds a whole URL
        return
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        return
    try:
        principal = principal_of(request, db)  # cached on request.state for the route
    except AppError:
        return  # bad credentials: the route itself answers 401/403
    who = "key" if principal.api_key is not None else "user"
    wanted = [(what, key, parse_limit(text)) for what, key, text in (
        (who, f"{who}:{principal.actor_id}", value("rate_limit_per_key")),
        ("org", f"org:{principal.org_id}", value("rate_limit_per_org")))]
    limits = [(what, key, limit) for what, key, limit in wanted if limit is not None]
    results = hit_all([(key, limit) for _, key, limit in limits])
    for i, ((what, _, limit), (allowed, retry_after)) in enumerate(zip(limits, results,
                                                                        strict=True)):
        if not allowed:
            # Counted together, but a request refused for its key must not spend its org's
            # budget (one runaway key would stall the org's other keys).
            for _, later_key, later in limits[i + 1:]:
                undo(later_key, later)
            raise _exceeded(what, limit, retry_after)


def install_rate_limits(app: FastAPI) -> None:
    """Add the limiter to every route included *after* this call (call it before routers)."""
    # Routers copy the app's dependencies when included, so later additions would not apply.
    if any(isinstance(r, APIRoute) or type(r).__name__ == "_IncludedRouter" for r in app.routes):
        raise RuntimeError("install_rate_limits() must run before the routers are included")
    app.router.dependencies.append(Depends(rate_limit))
