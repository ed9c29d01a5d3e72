"""A real worker process on the real Redis broker; tasks leave only after commit."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.db import get_sessionmaker
from tests.processes import celery_worker


@pytest.mark.slow
def test_task_round_trip_through_redis(service_env: dict[str, str]) -> None:
    from worker.tasks import ping

    assert service_env["ATELIER_BROKER_URL"].startswith("redis://")
    with celery_worker(service_env, queues="default"):
        result = ping.delay("hello").get(timeout=60)
    assert result["token"] == "hello"


def test_deferred_callbacks_run_only_after_commit(service_env: dict[str, str]) -> None:
    sent: list[str] = []
    session: Session = get_sessionmaker()()
    defer(session, lambda: sent.append("committed"))
    assert sent == []
    session.commit()
    assert sent == ["committed"]

    defer(session, lambda: sent.append("rolled back"))
    session.rollback()
    session.commit()
    assert sent == ["committed"]
    session.close()
