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
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import make_engine
from app.core.settings import get_settings
from app.models import ApiKey

log = logging.getLogger("atelier.bookkeeping")
SQLITE_BUSY_MS = 50


@lru_cache
def _engine(url: str) -> Engine:
    # A pool of its own: the request already holds a connection of the main pool, and taking a
    # second one there could wait on (or exhaust) it under load. Here a busy pool means "skip".
    return make_engine(url, pool_size=2, max_overflow=0, pool_timeout=0.05)


def mark_key_used(key_id: str, now: datetime, cutoff: datetime) -> bool:
    """``UPDATE api_keys SET last_used_at = now WHERE id = :id AND (NULL or < cutoff)``,
    without waiting on anything; True when a row was written."""
    stale = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < cutoff)
    try:
        with _engine(get_settings().database_url).connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
                target = (select(ApiKey.id).where(ApiKey.id == key_id, stale)
                          .with_for_update(skip_locked=True).scalar_subquery())
                result = conn.execute(update(ApiKey).where(ApiKey.id == target)
                                      .values(last_used_at=now))
            else:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
                result = conn.execute(update(ApiKey).where(ApiKey.id == key_id, stale)
                                      .values(last_used_at=now))
            conn.commit()
            return bool(result.rowcount)
    except SQLAlchemyError as exc:  # pool busy, lock held, database locked: skip this time
        log.debug("last_used_at for %s skipped: %s", key_id, exc)
        return False
