"""Bookkeeping writes (an API key's last use) outside the request's transaction.

Writing ``last_used_at`` inside the request would hold the key's row lock (PostgreSQL) or the
database's write lock (SQLite) for as long as the request lasts: a long upload or stream on one
key would stall every other request of that key, or every writer on SQLite. So it is written
here in its own short transaction, on its own tiny pool, only when stale, and never waits: a
row another request is updating is skipped (``SKIP LOCKED``), a busy pool or a locked SQLite
database skips the write. The next request a minute later tries again; it is bookkeeping.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Connection, Engine, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import make_engine
from app.core.settings import get_settings
from app.models import ApiKey

log = logging.getLogger("atelier.bookkeeping")
SQLITE_BUSY_MS = 50
POOL_SIZE = 2


@lru_cache
def _engine(url: str) -> Engine:
    # A pool of its own: the request already holds a connection of the main pool, and taking a
    # second one there could wait on (or exhaust) it under load. Here a busy pool means "skip",
    # at once (timeout 0): a wait held the request's thread (bench/README, the 11:35 table).
    return make_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=0)


_STALE = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("cutoff"))
# Built once (a statement built per call also rebuilds its cache key). PostgreSQL: a row another
# request is updating is skipped, not waited for.
_MARK_PG = update(ApiKey).where(ApiKey.id == (
    select(ApiKey.id).where(ApiKey.id == bindparam("key_id"), _STALE)
    .with_for_update(skip_locked=True).scalar_subquery())).values(last_used_at=bindparam("now"))
_MARK_SQLITE = (update(ApiKey).where(ApiKey.id == bindparam("key_id"), _STALE)
                .values(last_used_at=bindparam("now")))
# One round trip. synchronous_commit off: the commit does not wait for its WAL flush. A crash
# can lose the last second of these writes, which only leaves last_used_at a little older.
_PG_LIMITS = ("SELECT set_config('lock_timeout', '50ms', true), "
              "set_config('synchronous_commit', 'off', true)")


def engine() -> Engine:
    return _engine(get_settings().database_url)


def reset() -> None:
    """Close the pool and forget it (tests, as ``app.core.db.reset_db_caches``)."""
    if _engine.cache_info().currsize:
        engine().dispose()
    _engine.cache_clear()


def mark_key_used(key_id: str, now: datetime, cutoff: datetime) -> bool:
    """``UPDATE api_keys SET last_used_at = now WHERE id = :id AND (NULL or < cutoff)``,
    without waiting on anything; True when a row was written."""
    try:
        with engine().connect() as conn:
            return _mark(conn, key_id, now, cutoff)
    except SQLAlchemyError as exc:  # pool busy, lock held, database locked: skip this time
        log.debug("last_used_at for %s skipped: %s", key_id, exc)
        return False


def _mark(conn: Connection, key_id: str, now: datetime, cutoff: datetime) -> bool:
    values = {"key_id": key_id, "now": now, "cutoff": cutoff}
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_LIMITS)
        result = conn.execute(_MARK_PG, values)
    else:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        result = conn.execute(_MARK_SQLITE, values)
    conn.commit()
    return bool(result.rowcount)


def open_pool(no_key: str) -> None:
    """Open the pool's connections and run the write once on each, for a key id that no row
    has (the API's warm-up, app.core.warmup): not on the first requests under load."""
    now = datetime.now(UTC)
    with ExitStack() as held:
        for _ in range(POOL_SIZE):
            _mark(held.enter_context(engine().connect()), no_key, now, now)
