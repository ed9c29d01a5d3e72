"""Engine, sessions and the per-request transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import get_settings


def make_engine(url: str, **pool: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; FKs are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True,
                         **({"pool_size": 10, "max_overflow": 20} | pool))


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def reset_db_caches() -> None:
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


API_SESSION = "atelier_api"


@contextmanager
def session_scope(*, api: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, always close.

    ``api=True`` marks the API's own sessions (requests, stream reads): on PostgreSQL each of
    their transactions runs under ``statement_timeout`` and ``idle_in_transaction_session_timeout``
    (settings), so a stuck API transaction cannot hold locks or a connection for long. The
    worker's and the CLI's long operations use plain sessions and are not cut by them.
    """
    session = get_sessionmaker()()
    if api:
        session.info[API_SESSION] = True
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@event.listens_for(Session, "after_begin")
def _api_timeouts(session: Session, _transaction: object, connection: Connection) -> None:
    if not session.info.get(API_SESSION) or connection.dialect.name != "postgresql":
        return
    settings = get_settings()
    # set_config(..., true) = SET LOCAL: it ends with this transaction, so a pooled connection
    # later used by the worker or the CLI carries no API limits.
    connection.exec_driver_sql(
        "SELECT set_config('statement_timeout', %(st)s, true), "
        "set_config('idle_in_transaction_session_timeout', %(idle)s, true)",
        {"st": str(settings.db_statement_timeout_ms),
         "idle": str(settings.db_idle_in_transaction_timeout_ms)},
    )


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


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: object) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _transaction_over(session: Session, *_: object) -> None:
    session.info.pop(_WROTE, None)
