"""`GET /v1/audit-events`: who did what, when, from which key or user (scope `admin`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from app.core.deps import DB
from app.core.errors import Unprocessable
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import scoped
from app.identity.principal import Principal, require
from app.integrations.schemas import AuditEventOut
from app.models import AuditEvent

router = APIRouter(tags=["audit"])


def _utc(dt: datetime) -> datetime:
    # A timestamp without an offset means UTC here, as every timestamp the API writes is UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


@router.get(
    "/audit-events", response_model=Page[AuditEventOut], operation_id="list_audit_events",
    responses={401: {"description": "Not authenticated"},
               403: {"description": "Missing the admin scope"},
               422: {"description": "Invalid filter"}, 429: {"description": "Rate limited"}},
)
def list_audit_events(
    page: PageParams = PAGE,
    action: str | None = Query(None, max_length=100,
                               description="Exact action, or a prefix ending in '.*' "
                                           "(e.g. `webhook.*`)."),
    actor_type: str | None = Query(None, pattern="^(user|api_key|system)$"),
    actor_id: str | None = Query(None, max_length=64),
    target_type: str | None = Query(None, max_length=64),
    target_id: str | None = Query(None, max_length=64),
    since: datetime | None = Query(None, description="Only events at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Only events before (ISO 8601)."),
    db: Session = DB,
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    texts = {"action": action, "actor_id": actor_id, "target_type": target_type,
             "target_id": target_id}
    if bad := [name for name, text in texts.items() if text and "\x00" in text]:
        raise Unprocessable("Filters must not contain NUL characters.",
                            errors=[{"loc": ["query", name], "msg": "contains NUL"}
                                    for name in bad])
    stmt = scoped(AuditEvent, principal)
    if action is not None:
        if action.endswith(".*"):
            stmt = stmt.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    for column, wanted in ((AuditEvent.actor_type, actor_type), (AuditEvent.actor_id, actor_id),
                           (AuditEvent.target_type, target_type),
                           (AuditEvent.target_id, target_id)):
        if wanted is not None:
            stmt = stmt.where(column == wanted)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= _utc(since))
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < _utc(until))
    return paginate(db, stmt, AuditEvent.id, page, AuditEventOut.model_validate)
