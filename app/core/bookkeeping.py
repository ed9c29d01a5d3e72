"""Bookkeeping writes (an API key's last use), batched off the request path.

A request only notes that its key was used (``note_key_used``: a set entry, no I/O). A thread
of each API process writes what was noted once a second (``flush``), in one short transaction
of its own for all the keys at once, on a tiny pool of its own, and at shutdown. Written inside
the request, the marker held the key's row lock (PostgreSQL) or the database's write lock
(SQLite) for as long as the request lasted; written per request in its own transaction, it
still cost each key's first request ~3.5 ms and a pooled connection, which after a restart
(every key stale at once) made the first seconds the slowest (bench/README, "API under load").
Nothing here waits: a row another transaction is updating is skipped (``SKIP LOCKED``); a busy
pool or a locked SQLite database keeps the notes for the next flush. ``last_used_at`` is
therefore up to a second late, and a process killed outright loses at most that second.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import Connection, Engine, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import make_engine
from app.core.settings import get_settings
from app.models import ApiKey

log = logging.getLogger("atelier.bookkeeping")
SQLITE_BUSY_MS = 50
POOL_SIZE = 2
FLUSH_EVERY_S = 1.0
# A key already marked this recently is not written again: a busy key costs one write a minute.
RESOLUTION = timedelta(minutes=1)


@lru_cache
def _engine(url: str) -> Engine:
    # A pool of its own, so a flush never takes (or waits for) a request's connection; a busy
    # pool means "next time", at once (timeout 0).
    return make_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=0)


_STALE = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("cutoff"))
_IDS = bindparam("ids", expanding=True)
# Built once (a statement built per call also rebuilds its cache key). PostgreSQL: rows another
# transaction is updating are skipped, not waited for.
_MARK_PG = update(ApiKey).where(ApiKey.id.in_(
    select(ApiKey.id).where(ApiKey.id.in_(_IDS), _STALE).with_for_update(skip_locked=True),
)).values(last_used_at=bindparam("now"))
_MARK_SQLITE = update(ApiKey).where(ApiKey.id.in_(_IDS), _STALE).values(
    last_used_at=bindparam("now"))
# One round trip. synchronous_commit off: the commit does not wait for its WAL flush. A crash
# can lose the last second of these writes, which only leaves last_used_at a little older.
_PG_LIMITS = ("SELECT set_config('lock_timeout', '50ms', true), "
              "set_config('synchronous_commit', 'off', true)")


class _Noted:
    """Key ids used since the last flush (per process; requests run on many threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: set[str] = set()
        # A flush waits for one in flight, so it returns only once what that one took is
        # written: the key listing's flush relies on it.
        self.flushing = threading.Lock()


_noted = _Noted()
_flusher: tuple[threading.Thread, threading.Event] | None = None


def engine() -> Engine:
    return _engine(get_settings().database_url)


def note_key_used(key_id: str) -> None:
    """Remember that ``key_id`` was just used; the next flush writes it."""
    with _noted.lock:
        _noted.ids.add(key_id)


def flush() -> int:
    """Write every noted key's ``last_used_at`` (now, where older than RESOLUTION) in one
    transaction; the number of rows written. Never waits: on a busy pool or a locked
    database the notes are kept for the next flush."""
    with _noted.flushing:
        with _noted.lock:
            ids, _noted.ids = _noted.ids, set()
        if not ids:
            return 0
        now = datetime.now(UTC)
        try:
            with engine().connect() as conn:
                return _mark(conn, sorted(ids), now, now - RESOLUTION)
        except SQLAlchemyError as exc:  # pool busy, lock held, database locked: next time
            log.debug("last_used_at for %d keys put off: %s", len(ids), exc)
            with _noted.lock:
                _noted.ids |= ids
            return 0


def _mark(conn: Connection, ids: list[str], now: datetime, cutoff: datetime) -> int:
    values = {"ids": ids, "now": now, "cutoff": cutoff}
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_LIMITS)
        result = conn.execute(_MARK_PG, values)
    else:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        result = conn.execute(_MARK_SQLITE, values)
    conn.commit()
    return int(result.rowcount)


def _flush_until(stop: threading.Event) -> None:
    while not stop.wait(FLUSH_EVERY_S):
        try:
            flush()
        except Exception:  # noqa: BLE001 - a bookkeeping bug must not end the thread
            log.exception("last_used_at flush failed")


def start() -> None:
    """Start this process's flushing thread (the API's startup; idempotent)."""
    global _flusher
    if _flusher is None:
        stop = threading.Event()
        thread = threading.Thread(target=_flush_until, args=(stop,), daemon=True,
                                  name="atelier-bookkeeping")
        thread.start()
        _flusher = thread, stop


def stop() -> None:
    """Stop the thread and write what is still noted (the API's shutdown)."""
    global _flusher
    if _flusher is not None:
        thread, event = _flusher
        _flusher = None
        event.set()
        thread.join(5)
    flush()


def reset() -> None:
    """Forget the notes and the pool (tests, as ``app.core.db.reset_db_caches``)."""
    with _noted.lock:
        _noted.ids.clear()
    if _engine.cache_info().currsize:
        engine().dispose()
    _engine.cache_clear()


def open_pool(no_key: str) -> None:
    """Open the pool's connections and run the write once on each, for a key id that no row
    has (the API's warm-up, app.core.warmup): not on the first flushes under load."""
    now = datetime.now(UTC)
    with ExitStack() as held:
        for _ in range(POOL_SIZE):
            _mark(held.enter_context(engine().connect()), [no_key], now, now)
