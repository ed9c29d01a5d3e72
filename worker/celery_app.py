"""The Celery app: Redis in the full stack, SQLAlchemy-over-SQLite in the embedded default.

Reliability settings: a task is acknowledged only after it finishes (acks_late), a worker takes
one task at a time (prefetch 1: one job per GPU), and a task whose worker died is redelivered.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.core.settings import get_settings

GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "default"
SQLITE_BROKER = "sqla+sqlite:"
WAKE_TRANSPORT = "worker.broker_wake:Transport"


def result_backend_for(broker_url: str) -> str:
    # Results are only kept for the few tasks that ask (ping); jobs report through the database.
    if broker_url.startswith("sqla+"):
        return "db+" + broker_url.removeprefix("sqla+")
    return broker_url


class AtelierCelery(Celery):
    """Celery whose SQLite broker connections use the wake-up transport (worker/broker_wake.py).

    Decided per connection from the URL, so a broker URL changed later (tests, operators)
    still gets the transport its scheme names."""

    def _connection(self, url: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(SQLITE_BROKER) and not kwargs.get("transport"):
            url, kwargs["transport"] = url.removeprefix("sqla+"), WAKE_TRANSPORT
        return super()._connection(url, **kwargs)


def make_celery() -> Celery:
    s = get_settings()
    app = AtelierCelery(
        "atelier", broker=s.broker_url, backend=result_backend_for(s.broker_url),
        include=["worker.tasks", "worker.webhook_tasks", "worker.cleanup_tasks"],
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_routes={"atelier.train_job": {"queue": GPU_QUEUE},
                     "atelier.caption_job": {"queue": GPU_QUEUE}},
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Redis redelivers an unacked message after this; the SQLAlchemy transport passes its
        # options to create_engine, so it gets none.
        broker_transport_options=(
            {"visibility_timeout": 6 * 3600} if s.broker_url.startswith("redis") else {}
        ),
        timezone="UTC",
        # Run by `celery beat` (compose `scheduler`, or embedded in `atelier up`'s worker).
        beat_schedule={
            "reconcile-jobs": {"task": "atelier.reconcile",
                               "schedule": s.reconcile_interval_s},
            "resend-stale-webhooks": {"task": "atelier.resend_stale_webhooks",
                                      "schedule": s.reconcile_interval_s * 6},
        },
    )
    return app


celery_app = make_celery()
