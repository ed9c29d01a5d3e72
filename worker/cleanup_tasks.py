"""Celery tasks that delete storage objects no row owns any more (after finalize or a model
deletion). They are idempotent and retried with backoff until the prefix is clean."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from app.library.cleanup import run_cleanup, run_model_cleanup
from app.storage.base import StorageError
from worker.celery_app import celery_app

# Storage outages can last; keep retrying (backoff doubling up to 15 minutes) rather than
# leave objects behind. Each run re-lists the prefix, so a retry never repeats work blindly.
_RETRY = {
    "autoretry_for": (StorageError, OperationalError),
    "retry_backoff": 2,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "max_retries": None,
    "acks_late": True,
}


@celery_app.task(name="atelier.cleanup_job_storage", **_RETRY)
def cleanup_job_storage(org_id: str, job_id: str) -> int:
    """Delete everything under a finalized job's storage prefix; returns objects deleted."""
    return run_cleanup(org_id, job_id)


@celery_app.task(name="atelier.cleanup_model_storage", **_RETRY)
def cleanup_model_storage(org_id: str, model_id: str) -> int:
    """Delete the files of a deleted model."""
    return run_model_cleanup(org_id, model_id)
