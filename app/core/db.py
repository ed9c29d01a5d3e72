"""Engine, sessions and the per-request transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import get_settings


def make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; FKs are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # orjson parses the JSON columns (job configs, file lists) several times faster than json.
    settings = get_settings()
    engine = create_engine(url, json_deserializer=orjson.loads,
                           **({"pool_size": settings.db_pool_size,
                               "max_overflow": settings.db_max_overflow} | options))
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for less than this is handed out again without a ping.
IDLE_BEFORE_PING_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle: a ping is a round trip, as
    costly as a small query, and ``pool_pre_ping`` added one to every request. A connection
    used moments ago is alive or, if the server has just restarted, fails its query once and
    the pool is invalidated (SQLAlchemy's disconnect handling)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is not None and time.monotonic() - since < IDLE_BEFORE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("connection failed its ping")  # the pool reconnects


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def get_api_engine() -> Engine:
    """The API's own pool. On PostgreSQL its connections carry ``statement_timeout`` and
    ``idle_in_transaction_session_timeout`` (settings) from the moment they open, so a stuck
    API transaction cannot hold locks or a connection for long, at no cost per transaction;
    the worker's and the CLI's long operations use ``get_engine()``, whose connections carry
    none. SQLite has no such limits: one engine serves both."""
    settings = get_settings()
    if not settings.database_url.startswith("postgresql"):
        return get_engine()
    idle = settings.db_idle_in_transaction_timeout_ms
    limits = (f"-c statement_timeout={settings.db_statement_timeout_ms} "
              f"-c idle_in_transaction_session_timeout={idle}")
    # Keeps every connection it opens, up to the gate (app.core.deps): an overflow connection
    # closed on return had to be opened again by the next burst, a backend fork and cold
    # catalog caches each, when the server was busiest (bench/README, "Connections kept").
    return make_engine(settings.database_url, connect_args={"options": limits},
                       pool_size=settings.api_db_slots, max_overflow=0)


@lru_cache
def get_sessionmaker(api: bool = False, read_only: bool = False) -> sessionmaker[Session]:
    """``read_only=True``: sessions of routes that never write (``reads_only`` in
    app.core.deps). On PostgreSQL they run in autocommit, without BEGIN and COMMIT: two round
    trips fewer per request, and ending one does no I/O. Any write through one is refused."""
    engine = get_api_engine() if api else get_engine()
    autocommit = read_only and engine.dialect.name == "postgresql"
    if autocommit:
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return sessionmaker(bind=engine, expire_on_commit=False,
                        info={READ_ONLY: True, AUTOCOMMIT: autocommit} if read_only else None)


def reset_db_caches() -> None:
    for cached in (get_api_engine, get_engine):
        if cached.cache_info().currsize:
            cached().dispose()
        cached.cache_clear()
    get_sessionmaker.cache_clear()


@contextmanager
def session_scope(*, api: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, always close.

    ``api=True`` marks the API's own sessions (requests, stream reads): on PostgreSQL they run
    on ``get_api_engine()``, under its timeouts. The worker's and the CLI's long operations use
    plain sessions and are not cut by them.
    """
    session = get_sessionmaker(api)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- ending a read-only transaction before slow work -----------------------------------------

_WROTE = "atelier_wrote"


def end_reads(db: Session) -> None:
    """End the request's read-only transaction before slow work (receiving a large body,
    decoding images, storage I/O): no snapshot, lock or pooled connection is held across it,
    and PostgreSQL's idle-in-transaction timeout cannot cut it. Loaded objects stay usable; the
    next query begins a new transaction. Writes made before this point would be committed early,
    splitting the unit of work, so that is refused as a programming error."""
    if db.new or db.dirty or db.deleted or db.info.get(_WROTE):
        raise RuntimeError("end_reads() after a write: do the slow work before writing")
    db.commit()


READ_ONLY = "atelier_read_only"
AUTOCOMMIT = "atelier_autocommit"  # a read-only session without a transaction (PostgreSQL)


class WriteInReadOnlySession(RuntimeError):
    """A route marked ``reads_only`` tried to write (a programming error: remove the mark)."""


@event.listens_for(Session, "before_flush")
def _flushing(session: Session, _context: object, _instances: object) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise WriteInReadOnlySession("a reads_only route changed an object")


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: object) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: Any) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    if state.session.info.get(READ_ONLY) and (writes or _locks(state.statement)):
        # In autocommit a write would be committed at once and a row lock released at once.
        raise WriteInReadOnlySession("a reads_only route ran a write or a locking read")
    if writes:
        state.session.info[_WROTE] = True


def _locks(statement: Any) -> bool:
    return getattr(statement, "_for_update_arg", None) is not None


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _transaction_over(session: Session, *_: object) -> None:
    session.info.pop(_WROTE, None)
