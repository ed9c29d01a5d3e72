"""Deleting what finalize (or a model deletion) left behind in storage.

The rows go first, in the request's transaction; the objects go after commit, in a Celery task
that can run any number of times (``worker/cleanup_tasks.py``). So a storage error mid-way
never leaves a row pointing at a deleted file: at worst objects linger until a retry removes
them. ``run_cleanup`` is the synchronous body of the task, callable directly (tests, the
embedded mode without a broker).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.db import session_scope
from app.core.keys import job_prefix, model_prefix
from app.models import Checkpoint, Model, TrainingJob, ValidationImage
from app.storage.base import Storage, StorageError
from app.storage.factory import get_storage

log = logging.getLogger("atelier.cleanup")

MAX_ROUNDS = 5
"""Listing again after a delete catches objects a straggler wrote meanwhile; a few rounds are
plenty, and the task's retries cover the rest."""


class PrefixNotClean(StorageError):
    """Objects remain under the prefix after deleting; the task retries."""


def _referenced_keys(db: Session, job_id: str) -> set[str]:
    """Keys still owned by rows of the job (none after finalize; kept out of deletion anyway)."""
    keys = set(db.scalars(select(ValidationImage.storage_key).where(
        ValidationImage.job_id == job_id)))
    for files in db.scalars(select(Checkpoint.files).where(Checkpoint.job_id == job_id)):
        keys.update(f["key"] for f in files)
    return keys


def _deletable(key: str, org_id: str, job_id: str, keep: set[str]) -> bool:
    # Belt and braces: only the job's own prefix, never a library model's object.
    return (key.startswith(job_prefix(org_id, job_id))
            and not key.startswith(f"orgs/{org_id}/models/") and key not in keep)


def run_cleanup(org_id: str, job_id: str, storage: Storage | None = None) -> int:
    """Delete every object under the finalized job's prefix; returns how many were deleted.

    Idempotent: a second run finds nothing and deletes nothing. Raises ``StorageError`` when
    storage fails or the prefix is still not clean, for the caller to retry.
    """
    storage = storage or get_storage()
    with session_scope() as db:
        job = db.get(TrainingJob, job_id)
        if job is not None and (job.org_id != org_id or job.status != "finalized"):
            log.warning("not cleaning job %s: status %s", job_id, job.status)
            return 0
        keep = _referenced_keys(db, job_id)
    prefix, deleted = job_prefix(org_id, job_id), 0
    for _ in range(MAX_ROUNDS):
        keys = [o.key for o in storage.list(prefix) if _deletable(o.key, org_id, job_id, keep)]
        if not keys:
            log.info("job %s storage clean (%d objects deleted)", job_id, deleted)
            return deleted
        storage.delete_many(keys)  # batched by the backend (1000 keys per S3 request)
        deleted += len(keys)
    raise PrefixNotClean(f"objects keep appearing under {prefix}")


def run_model_cleanup(org_id: str, model_id: str, storage: Storage | None = None) -> int:
    """Delete the files of a deleted model (nothing while its row still exists)."""
    storage = storage or get_storage()
    with session_scope() as db:
        if db.get(Model, model_id) is not None:
            return 0
    prefix = model_prefix(org_id, model_id)
    keys = [o.key for o in storage.list(prefix)]
    if keys:
        storage.delete_many(keys)
    return len(keys)


def send_cleanup(org_id: str, job_id: str) -> None:
    """Hand the job's cleanup to a worker; without a reachable broker, do it here and now."""
    try:
        from worker.cleanup_tasks import cleanup_job_storage

        cleanup_job_storage.delay(org_id, job_id)
    except Exception:  # the broker is down: better slow now than orphaned objects forever
        log.warning("could not enqueue cleanup of job %s; running it inline", job_id,
                    exc_info=True)
        try:
            run_cleanup(org_id, job_id)
        except Exception:
            log.exception("inline cleanup of job %s failed; run it again later", job_id)


def send_model_cleanup(org_id: str, model_id: str) -> None:
    try:
        from worker.cleanup_tasks import cleanup_model_storage

        cleanup_model_storage.delay(org_id, model_id)
    except Exception:
        log.exception("could not enqueue cleanup of model %s", model_id)


def schedule_cleanup(db: Session, org_id: str, job_id: str) -> None:
    """Send the cleanup once the finalize transaction has committed (never for a rollback)."""
    # The global name is resolved when the callback runs, so tests can replace send_cleanup.
    defer(db, lambda: send_cleanup(org_id, job_id))
