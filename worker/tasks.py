"""Celery tasks. A message carries an id and nothing else; the worker re-reads the database."""

from __future__ import annotations

import socket

from worker.celery_app import celery_app


@celery_app.task(name="atelier.ping", ignore_result=False)
def ping(token: str) -> dict[str, str]:
    """Round-trip check used by tests and operators."""
    return {"token": token, "worker": socket.gethostname()}


@celery_app.task(name="atelier.train_job")
def train_job(job_id: str) -> str:
    from worker.runner.run_job import run_job

    return run_job(job_id)


@celery_app.task(name="atelier.caption_job")
def caption_job(job_id: str) -> str:
    from worker.runner.run_caption_job import run_caption_job

    return run_caption_job(job_id)


@celery_app.task(name="atelier.reconcile")
def reconcile() -> dict[str, int]:
    from app.jobs.dispatch import reconcile_and_dispatch

    return reconcile_and_dispatch()
