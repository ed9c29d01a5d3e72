"""The embedded broker (SQLite) wakes its worker when a message is published
(worker/broker_wake.py): a real worker process, its fallback poll set to an hour."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

from tests.processes import celery_worker
from worker.broker_wake import wake_dir
from worker.celery_app import AtelierCelery, result_backend_for

HOUR = "3600"


def _env(tmp_path: Path, poll_s: str) -> tuple[dict[str, str], str]:
    broker = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    return {"ATELIER_DATA_DIR": str(tmp_path), "ATELIER_BROKER_URL": broker,
            "ATELIER_DATABASE_URL": f"sqlite:///{tmp_path / 'atelier.db'}",
            "ATELIER_REDIS_URL": "", "ATELIER_BROKER_POLL_INTERVAL_S": poll_s}, broker


def _client(broker: str) -> Celery:
    return AtelierCelery("wake-test", broker=broker, backend=result_backend_for(broker))


def _ping(client: Celery, token: str) -> str:
    return client.send_task("atelier.ping", args=[token], queue="default").get(timeout=60)[
        "token"]


def _wait_for_socket(folder: Path, timeout_s: float = 90) -> None:
    """The worker binds its socket when it starts consuming."""
    deadline = time.monotonic() + timeout_s
    while not (folder.is_dir() and any(folder.glob("*.sock"))):
        assert time.monotonic() < deadline, "the worker never started consuming"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_published_task_wakes_the_idle_worker(tmp_path: Path) -> None:
    env, broker = _env(tmp_path, HOUR)
    client = _client(broker)
    folder = wake_dir(broker.removeprefix("sqla+"))
    assert folder is not None
    with celery_worker(env, queues="default"):
        _wait_for_socket(folder)
        # The first task may meet the worker's start-up poll; the second comes once it has
        # gone back to waiting (up to an hour between polls): only the wake-up can fetch it.
        assert _ping(client, "first") == "first"
        time.sleep(1)
        token = secrets.token_hex(4)
        assert _ping(client, token) == token
    assert not any(folder.glob("*.sock")), "a stopped worker leaves no socket behind"


@pytest.mark.slow
def test_without_a_wake_up_the_poll_still_delivers(tmp_path: Path) -> None:
    """A publisher that wakes nobody (kombu's own transport) loses nothing: the poll finds it."""
    env, broker = _env(tmp_path, "0.5")
    client = _client(broker)
    folder = wake_dir(broker.removeprefix("sqla+"))
    assert folder is not None
    with celery_worker(env, queues="default"):
        _wait_for_socket(folder)
        token = secrets.token_hex(4)
        with Connection(broker) as plain:  # "sqla+": kombu's transport, which never wakes
            assert type(plain.transport).__module__ == "kombu.transport.sqlalchemy"
            result = client.send_task("atelier.ping", args=[token], queue="default",
                                      connection=plain)
        assert result.get(timeout=60)["token"] == token
