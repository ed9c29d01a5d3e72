"""An API process warms up before it takes traffic.

A fresh process compiles each statement once (SQLAlchemy's cache is per process) and a fresh
PostgreSQL connection loads the catalog entries of every table and index it plans against
(per connection). Paid by the first requests instead, under load, this made a cold server
queue requests faster than it answered them for many seconds (bench/README, "API under
load"). Route modules register the queries of their busiest routes with ``warm_up_step``;
the process opens its pool's connections and runs every step once on each of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.core import bookkeeping
from app.core.db import get_api_engine, get_sessionmaker
from app.core.settings import get_settings

log = logging.getLogger(__name__)

# Ids are 28 alphanumerics and hex; this one has the shape but no row can have it.
NO_ID = "z" * 28
Step = Callable[[Session], object]
_STEPS: list[Step] = []


def warm_up_step(step: Step) -> Step:
    """Register ``step``: it runs the route's queries for ``NO_ID`` and must find nothing."""
    _STEPS.append(step)
    return step


def warm_up() -> int:
    """Run every step on each of the pool's connections (PostgreSQL only: the embedded SQLite
    default has no such load to prepare for). Returns how many
    connections were warmed; a failure is logged, never raised: a database that is down now
    must not keep the API from starting and answering its health checks."""
    settings = get_settings()
    if not (settings.api_warm_up and get_api_engine().dialect.name == "postgresql"):
        return 0
    started = time.perf_counter()
    make = get_sessionmaker(api=True, read_only=True)
    sessions: list[Session] = []
    try:
        for _ in range(settings.db_pool_size):
            sessions.append(make())
            sessions[-1].connection()  # held, so the next session gets another connection
        for db in sessions:
            for step in _STEPS:
                step(db)
        bookkeeping.open_pool(NO_ID)  # each request may mark its API key used
    except Exception as exc:  # noqa: BLE001 - any failure only costs the warm-up
        log.warning("warm-up stopped, the first requests will pay for it: %s", exc)
        return 0
    finally:
        for db in sessions:
            db.close()
    log.info("warmed %d connections, %d steps each, in %.0f ms", len(sessions),
             len(_STEPS), 1000 * (time.perf_counter() - started))
    return len(sessions)
