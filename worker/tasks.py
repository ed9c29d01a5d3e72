"""Celery tasks. A message carries an id and nothing else; the worker re-reads the database."""

from __future__ import annotations

import socket

from worker.celery_app import celery_app


@celery_app.task(name="atelier.ping", ignore_result=False)
def ping(token: str) -> dict[str, str]:
    """Round-trip check used by tests and operators."""
    return {"token": token, "worker": socket.gethostname()}
