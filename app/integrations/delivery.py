"""One delivery attempt: sign, POST, record. Celery-free, so it is easy to test and reuse.

The database transaction is never held open across the HTTP call (a slow receiver must not pin
a connection), and the result is written with a conditional UPDATE, so two copies of the same
message (a redelivered Celery task) cannot both count an attempt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.core import egress
from app.core.db import session_scope
from app.integrations.config import number
from app.integrations.schemas import REFUSED, REFUSED_RESOLVED
from app.integrations.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from app.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger("atelier.webhooks")
USER_AGENT = "Atelier-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | pending (will retry) | failed | skipped (nothing to do)
    retry_in: float | None = None


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): base * 2^(n-1)."""
    return min(number("webhook_backoff_cap_s"),
               number("webhook_backoff_base_s") * 2 ** (attempt - 1))


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":")).encode()


def post(url: str, secret: str, event: str, delivery_id: str,
         body: bytes) -> tuple[int | None, str | None]:
    """(response code, short reason) of one signed POST through the egress guard. Tenants read
    the reason, so it is never the receiver's answer body nor an internal detail. Redirects are
    not followed: a receiver that moved must be updated, not trusted to forward signed
    payloads."""
    headers = [
        ("Content-Type", "application/json"), ("User-Agent", USER_AGENT),
        (SIGNATURE_HEADER, sign(secret, body)), (EVENT_HEADER, event),
        (DELIVERY_HEADER, delivery_id),
    ]
    try:
        answer = egress.post(url, body, headers, timeout_s=number("webhook_timeout_s"))
    except egress.Refused as exc:
        log.warning("webhook delivery %s refused: %s", delivery_id, exc.reason)
        return None, REFUSED_RESOLVED if exc.reason == REFUSED_RESOLVED else REFUSED
    except egress.EgressError as exc:
        log.info("webhook delivery %s failed: %s", delivery_id, exc.reason, exc_info=True)
        return None, exc.reason
    except Exception:  # a bug or an odd answer: counted as a failed attempt, details logged
        log.exception("webhook delivery %s failed unexpectedly", delivery_id)
        return None, "delivery error"
    if 200 <= answer.status < 300:
        return answer.status, None
    return answer.status, f"HTTP {answer.status}"


def attempt(delivery_id: str) -> Outcome:
    with session_scope() as db:
        d = db.get(WebhookDelivery, delivery_id)
        if d is None or d.status != "pending":
            return Outcome("skipped")
        endpoint = db.get(WebhookEndpoint, d.endpoint_id)
        seen = d.attempts
        if endpoint is None or not endpoint.active:
            d.status, d.last_error, d.next_attempt_at = "failed", "The webhook is disabled.", None
            return Outcome("failed")
        url, secret, event, body = endpoint.url, endpoint.secret, d.event, body_of(d)

    code, error = post(url, secret, event, delivery_id, body)
    now = datetime.now(UTC)
    n = seen + 1
    values: dict[str, object] = {"attempts": n, "response_code": code, "last_error": error,
                                 "next_attempt_at": None}
    if error is None:
        outcome = Outcome("succeeded")
        values["delivered_at"] = now
    elif n >= int(number("webhook_max_attempts")):
        outcome = Outcome("failed")
    else:
        outcome = Outcome("pending", backoff(n))
        values["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in or 0)
    values["status"] = outcome.status
    with session_scope() as db:
        moved = db.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.attempts == seen)
            .values(**values).execution_options(synchronize_session=False))
    if not moved.rowcount:  # type: ignore[attr-defined]
        return Outcome("skipped")  # another copy of this message recorded the attempt first
    return outcome
