"""Request-scoped dependencies: one unit of work per request, committed before the answer."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.core.db import get_sessionmaker
from app.core.settings import get_settings

# Per event loop (each uvicorn worker has one; tests start several).
_admission: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())
SPARE_THREADS = 10


def _gate() -> asyncio.Semaphore:
    """At most as many requests as the pool has connections hold a session at once.

    A request keeps its connection from its first query to its commit, across several trips
    to the thread pool (rate limit, endpoint, commit). Without this gate a burst deadlocked:
    every pool thread blocked waiting for a connection while the requests holding all the
    connections waited for a thread, until the pool timeout (30 s) failed them. Requests past
    the gate wait here, holding neither, and the thread pool is kept larger than the gate.
    """
    loop = asyncio.get_running_loop()
    gate = _admission.get(loop)
    if gate is None:
        settings = get_settings()
        size = settings.db_pool_size + settings.db_max_overflow
        gate = _admission[loop] = asyncio.Semaphore(size)
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, size + SPARE_THREADS)
    return gate


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_db() -> AsyncIterator[Session]:
    async with _gate():
        session = get_sessionmaker(api=True)()  # no connection until its first query
        try:
            yield session
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_end, session, False)
            raise
        # Shielded: a client that disconnects now must not leave the commit half-done or
        # the connection checked out.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_end, session, True)


# Function scope: the session commits and closes when the endpoint function returns, before
# the response is sent. A failed commit therefore becomes an error answer (never a 2xx for a
# write that was lost), and no session or transaction outlives the handler (streams, waits).
# Every route takes its session as `db: Session = DB`; a test checks that none uses another way.
DB = Depends(get_db, scope="function")
