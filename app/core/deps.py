"""Request-scoped dependencies: one unit of work per request, committed before the answer."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.core.db import AUTOCOMMIT, get_sessionmaker
from app.core.settings import get_settings

# Per event loop (each uvicorn worker has one; tests start several).
_admission: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())
SPARE_THREADS = 10
T = TypeVar("T")


def _gate() -> asyncio.Semaphore:
    """At most as many requests as the pool has connections hold a session at once.

    A request keeps its connection from its first query to its commit, across several trips
    to the thread pool (rate limit, endpoint, commit). Without this gate a burst deadlocked:
    every pool thread blocked waiting for a connection while the requests holding all the
    connections waited for a thread, until the pool timeout (30 s) failed them. Requests past
    the gate wait here, holding neither, and the thread pool is kept larger than the gate.
    A request waiting for its client's body leaves the gate meanwhile (``awaited_without_db``).
    """
    loop = asyncio.get_running_loop()
    gate = _admission.get(loop)
    if gate is None:
        size = get_settings().api_db_slots
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


@dataclass
class _Slot:
    """One request's place behind the gate (see ``awaited_without_db``)."""

    gate: asyncio.Semaphore
    held: bool = False

    async def take(self) -> None:
        if not self.held:
            await self.gate.acquire()
            self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()


_READS_ONLY = "__atelier_reads_only__"
F = TypeVar("F", bound=Callable[..., Any])


def reads_only(endpoint: F) -> F:
    """Mark a GET route that never writes (put it under ``@router.get``). Its session has no
    transaction on PostgreSQL (autocommit): no BEGIN/COMMIT round trips and no trip to the
    thread pool to end it, for the busiest routes. A write through it raises
    ``WriteInReadOnlySession`` (app.core.db), so a wrong mark fails loudly, never silently."""
    setattr(endpoint, _READS_ONLY, True)
    return endpoint


def is_reads_only(endpoint: object) -> bool:
    return bool(getattr(endpoint, _READS_ONLY, False))


def _reads_only(request: Request) -> bool:
    route = request.scope.get("route")
    return request.method in ("GET", "HEAD") and is_reads_only(getattr(route, "endpoint", None))


async def get_db(request: Request) -> AsyncIterator[Session]:
    slot = _Slot(_gate())
    await slot.take()
    try:
        session = get_sessionmaker(api=True, read_only=_reads_only(request))()  # no connection yet
        request.state.db_slot = slot, session
        # Without a transaction, ending the session only returns its connection: no I/O.
        no_io = bool(session.info.get(AUTOCOMMIT))
        try:
            yield session
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _finish(session, False, no_io)
            raise
        # Shielded: a client that disconnects now must not leave the commit half-done or
        # the connection checked out.
        with anyio.CancelScope(shield=True):
            await _finish(session, True, no_io)
    finally:
        slot.give_back()


async def _finish(session: Session, commit: bool, no_io: bool) -> None:
    if no_io:
        _end(session, commit)
    else:
        await run_in_threadpool(_end, session, commit)


async def awaited_without_db(request: Request, pending: Awaitable[T]) -> T:
    """Await slow client I/O (a request body) outside the gate: a slow or stalled upload then
    holds no place another request needs, so no number of them stops the API. The request must
    hold no connection (``end_reads`` first); it waits for a place again afterwards."""
    slot, session = request.state.db_slot
    if session.in_transaction():
        raise RuntimeError("awaited_without_db() inside a transaction: call end_reads() first")
    slot.give_back()
    try:
        return await pending
    finally:
        await slot.take()


# Function scope: the session commits and closes when the endpoint function returns, before
# the response is sent. A failed commit therefore becomes an error answer (never a 2xx for a
# write that was lost), and no session or transaction outlives the handler (streams, waits).
# Every route takes its session as `db: Session = DB`; a test checks that none uses another way.
DB = Depends(get_db, scope="function")
