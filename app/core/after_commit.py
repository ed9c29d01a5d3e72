"""Run callbacks only once the current transaction has committed (e.g. sending Celery tasks).

A task sent before commit could reach a worker that cannot see the row yet; a task sent for a
transaction that rolls back would run for nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "after_commit"


def defer(session: Session, fn: Callable[[], None]) -> None:
    # Begin the transaction now, so a rollback before any query still discards the callback.
    session.connection()
    session.info.setdefault(_KEY, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for fn in callbacks:
        fn()


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_KEY, None)
