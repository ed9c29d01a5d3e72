"""Request and response models of the integrations endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

WebhookEventName = Literal[
    "job.started", "job.succeeded", "job.failed", "job.cancelled", "job.finalized"
]
EVENTS: tuple[str, ...] = WebhookEventName.__args__  # type: ignore[attr-defined]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def check_url(url: str) -> str:
    """http(s) with a host; credentials in the URL would leak into logs, so they are refused."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; verify the signature instead")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
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
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


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
