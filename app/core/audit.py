"""Audit trail: who did what, when, from which key or user."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from app.identity.principal import Principal
from app.models import AuditEvent


def record(
    db: Session,
    principal: Principal,
    action: str,
    *,
    request: Request | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    db.add(
        AuditEvent(
            org_id=principal.org_id,
            actor_type=principal.type,
            actor_id=principal.actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            ip=request.client.host if request and request.client else None,
            user_agent=(request.headers.get("user-agent") or "")[:500] if request else None,
            details={"actor": principal.label, **(details or {})},
        )
    )
