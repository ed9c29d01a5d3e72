"""Webhook endpoints and events: record one delivery per subscribed endpoint, send after commit.

``emit_event`` is what other domains call when something happens (jobs on state changes). It
only inserts rows and defers a Celery message, so it never waits on a receiver: the HTTP call
happens in ``worker.webhook_tasks`` with its own retries.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.ids import new_id
from app.integrations.schemas import EVENTS
from app.integrations.signing import new_secret
from app.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger("atelier.webhooks")
DELIVER_TASK = "atelier.deliver_webhook"


def create_endpoint(
    db: Session, org_id: str, url: str, events: list[str], description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    row = WebhookEndpoint(org_id=org_id, url=url, events=events, description=description,
                          active=active, secret=new_secret())
    db.add(row)
    db.flush()
    return row


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    # Callers pass ORM-ish values (datetimes); the stored payload must be plain JSON.
    return json.loads(json.dumps(payload, default=str))


def envelope(event: str, data: dict[str, Any], org_id: str) -> dict[str, Any]:
    """The body receivers get. ``id`` names the event, so a redelivery keeps it (dedupe key)."""
    return {"id": new_id(), "type": event, "created_at": datetime.now(UTC).isoformat(),
            "org_id": org_id, "data": _jsonable(data)}


def emit_event(db: Session, org_id: str, event: str, payload: dict[str, Any]) -> None:
    """Queue ``event`` for every active endpoint of the org subscribed to it (after commit)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; known: {EVENTS}")
    endpoints = db.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True))).all()
    # Subscriptions live in a JSON list; filtering in Python keeps SQLite and Postgres alike.
    targets = [e for e in endpoints if event in (e.events or [])]
    if not targets:
        return
    body = envelope(event, payload, org_id)
    ids = []
    for endpoint in targets:
        delivery = WebhookDelivery(id=new_id(), org_id=org_id, endpoint_id=endpoint.id,
                                   event=event, payload=body, status="pending", attempts=0)
        db.add(delivery)
        ids.append(delivery.id)
    defer(db, lambda: send(ids))


def redeliver(db: Session, original: WebhookDelivery) -> WebhookDelivery:
    """A fresh delivery of the same body; the original keeps its own record of attempts."""
    delivery = WebhookDelivery(id=new_id(), org_id=original.org_id,
                               endpoint_id=original.endpoint_id, event=original.event,
                               payload=original.payload, status="pending", attempts=0)
    db.add(delivery)
    db.flush()
    defer(db, lambda: send([delivery.id]))
    return delivery


def send(delivery_ids: list[str]) -> None:
    """Hand deliveries to Celery. A broker outage must not fail the caller's committed work:
    the delivery stays ``pending`` and ``resend_stale`` picks it up later."""
    from worker.celery_app import DEFAULT_QUEUE, celery_app

    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_TASK, args=[delivery_id], queue=DEFAULT_QUEUE)
        except Exception:
            log.exception("could not send webhook delivery %s to the broker", delivery_id)


def resend_stale(db: Session, older_than_s: float = 3600) -> list[str]:
    """Pending deliveries whose next attempt is long overdue (a lost message): send them again
    after commit. Safe to run any time: the task skips deliveries that are no longer pending."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    due = func.coalesce(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
    stale = list(db.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", due < cutoff).limit(1000)))
    if stale:
        defer(db, lambda: send(stale))
    return stale
