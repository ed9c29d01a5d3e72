"""Integrations: webhooks, audit log, usage and quotas, API-key rotation.

Sub-routers keep each module small; this router is the one ``app.main`` includes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import Conflict, Forbidden
from app.core.tenancy import path_object
from app.identity.principal import Principal, get_principal, require
from app.identity.schemas import ApiKeyCreated, ApiKeyOut
from app.identity.security import new_api_key
from app.integrations import quotas
from app.integrations.audit_router import router as audit_router
from app.integrations.schemas import UsageOut
from app.integrations.webhooks_router import router as webhooks_router
from app.models import ApiKey

router = APIRouter(prefix="/v1", tags=["integrations"])
router.include_router(webhooks_router)
router.include_router(audit_router)

_api_key = path_object(ApiKey, "key_id", what="API key", scope="admin")


@router.get("/usage", response_model=UsageOut, operation_id="get_usage", tags=["usage"],
            responses={401: {"description": "Not authenticated"},
                       429: {"description": "Rate limited"}})
def get_usage(db: Session = DB,
              principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    """The org's consumption against its limits. Any signed-in member or key may read it."""
    return quotas.usage(db, principal.organization)


@router.post(
    "/api-keys/{key_id}/rotate", response_model=ApiKeyCreated, operation_id="rotate_api_key",
    tags=["identity"],
    responses={401: {"description": "Not authenticated"},
               403: {"description": "Missing the admin scope"},
               404: {"description": "No such key in this organization"},
               409: {"description": "The key is revoked or expired"},
               429: {"description": "Rate limited"}},
)
def rotate_api_key(key_id: str, request: Request, db: Session = DB,
                   principal: Principal = Depends(require("admin")),
                   row: ApiKey = Depends(_api_key)) -> ApiKeyCreated:
    """A new secret for the same key: id, name, scopes and expiry stay; the old secret stops
    working at once. Keeping the id keeps audit history and references continuous."""
    if row.revoked_at is not None:
        raise Conflict("This API key is revoked; create a new one instead.")
    expires = row.expires_at
    if expires is not None and (expires.replace(tzinfo=UTC) if expires.tzinfo is None
                                else expires) <= datetime.now(UTC):
        raise Conflict("This API key has expired; create a new one instead.")
    if not set(row.scopes) <= principal.scopes:
        raise Forbidden("A key cannot be rotated by a caller lacking its scopes.")
    key, row.prefix, row.key_hash = new_api_key()
    row.last_used_at = None
    audit.record(db, principal, "api_key.rotate", request=request, target_type="api_key",
                 target_id=row.id, details={"name": row.name})
    db.flush()
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)
