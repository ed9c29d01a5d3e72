"""API keys: create (shown once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from app.core import audit, bookkeeping
from app.core.deps import DB
from app.core.errors import Forbidden
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import path_object, scoped
from app.identity import service
from app.identity.principal import (
    Principal,
    require,
)
from app.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
)
from app.models import ApiKey

router = APIRouter(prefix="/v1", tags=["identity"])
_api_key = path_object(ApiKey, "key_id", what="API key", scope="admin")

# --- API keys ---------------------------------------------------------------------------------

@router.get("/api-keys", response_model=Page[ApiKeyOut], operation_id="list_api_keys")
def list_api_keys(page: PageParams = PAGE, db: Session = DB,
                  principal: Principal = Depends(require("admin"))) -> dict:
    bookkeeping.flush()  # this process's noted uses first: the list is never a second behind
    return paginate(db, scoped(ApiKey, principal), ApiKey.id, page, ApiKeyOut.model_validate)


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201,
             operation_id="create_api_key")
def create_api_key(body: ApiKeyCreate, request: Request, db: Session = DB,
                   principal: Principal = Depends(require("admin"))) -> ApiKeyCreated:
    if not set(body.scopes) <= principal.scopes:
        raise Forbidden("A key cannot carry scopes its creator does not have.")
    # A key made by a key acts for the same member (never for nobody, which would make it an
    # operator key); the new key is capped by that member's role at every request.
    row, key = service.create_api_key(
        db, principal.org_id, body.name, body.scopes,
        created_by=principal.member_user_id, expires_at=body.expires_at,
    )
    audit.record(db, principal, "api_key.create", request=request, target_type="api_key",
                 target_id=row.id, details={"name": body.name, "scopes": body.scopes})
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", status_code=204, operation_id="revoke_api_key")
def revoke_api_key(key_id: str, request: Request, db: Session = DB,
                   principal: Principal = Depends(require("admin")),
                   row: ApiKey = Depends(_api_key)) -> Response:
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        audit.record(db, principal, "api_key.revoke", request=request, target_type="api_key",
                     target_id=row.id)
    return Response(status_code=204)


