"""Celery glue for webhook deliveries: one attempt per run, retried with exponential backoff.

The attempt logic and its bookkeeping live in ``app.integrations.delivery``; this module only
turns "try again in N seconds" into a Celery retry, so a failing receiver never ties up a
worker (and never touches the training queue: deliveries run on the default queue).
"""

from __future__ import annotations

from celery import Task

from app.core.db import session_scope
from app.integrations.delivery import attempt
from app.integrations.webhooks import DELIVER_TASK, resend_stale
from worker.celery_app import celery_app


@celery_app.task(name=DELIVER_TASK, bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self: Task, delivery_id: str) -> str:
    outcome = attempt(delivery_id)
    if outcome.retry_in is not None:
        # max_retries=None: the attempt count in the database decides when to give up.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@celery_app.task(name="atelier.resend_stale_webhooks")
def resend_stale_webhooks(older_than_s: float = 3600) -> int:
    """Re-send deliveries whose message was lost (e.g. a broker restart); run periodically."""
    with session_scope() as db:
        return len(resend_stale(db, older_than_s))
