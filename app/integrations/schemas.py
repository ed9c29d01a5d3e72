"""Request and response models of the integrations endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core import egress

WebhookEventName = Literal[
    "job.started", "job.succeeded", "job.failed", "job.cancelled", "job.finalized"
]
EVENTS: tuple[str, ...] = WebhookEventName.__args__  # type: ignore[attr-defined]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


# What tenants read in a delivery's ``last_error``: a status or a short reason, never a body.
REFUSED = "refused: non-public address"
REFUSED_RESOLVED = egress.RESOLVES_INTERNAL
_REASONS = frozenset({REFUSED, REFUSED_RESOLVED, "timeout", "connection refused",
                      "connection failed", "connection error", "TLS error", "DNS lookup failed",
                      "delivery error",
                      "The webhook is disabled."})


def short_reason(text: str | None) -> str | None:
    """Rows written before the egress guard held receiver bodies and exception text."""
    if text is None or text in _REASONS:
        return text
    match = re.match(r"HTTP (\d{3})\b", text)
    return f"HTTP {match.group(1)}" if match else "delivery failed"


def check_url(url: str) -> str:
    """http(s) with a host that may be reached from the server (see app.core.egress);
    credentials in the URL would leak into logs, so they are refused."""
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("must not contain whitespace or control characters")
    try:
        egress.check_url(url)
    except egress.Refused as exc:
        raise ValueError(exc.reason) from exc
    return url


def no_nul(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if text is not None and "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def _unique_events(events: list[str]) -> list[str]:
    return sorted(set(events))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048, description="Where events are POSTed (http or https).")
    events: list[WebhookEventName] = Field(
        default_factory=lambda: sorted(EVENTS), min_length=1,
        description="Events to receive; every event by default.",
    )
    description: str = Field("", max_length=500)
    active: bool = True

    _url = field_validator("url")(check_url)
    _events = field_validator("events")(_unique_events)
    _description = field_validator("description")(no_nul)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2048)
    events: list[WebhookEventName] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=500)
    active: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _unique_events(v)

    _description = field_validator("description")(no_nul)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    url: str
    description: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signing secret (`whsec_...`). Shown only once.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    webhook_id: str = Field(validation_alias="endpoint_id")
    event: str
    payload: dict[str, Any] = Field(description="The JSON body that is (re)sent.")
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    last_error: str | None = Field(
        description="`HTTP <code>` or a short reason (`timeout`, `connection refused`, "
        "`refused: non-public address`, ...); never the receiver's answer body.")
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    _last_error = field_validator("last_error")(short_reason)


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    created_at: datetime
    actor_type: str = Field(description="`user`, `api_key` or `system`.")
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class UsageOut(BaseModel):
    storage_bytes_used: int
    storage_bytes_limit: int
    running_jobs: int = Field(description="Jobs running or stopping (they hold a GPU).")
    queued_jobs: int
    max_concurrent_jobs: int
    gpu_seconds_this_month: float
    monthly_gpu_seconds_limit: int
    period_start: datetime = Field(description="Start of the current calendar month (UTC).")
    period_end: datetime
