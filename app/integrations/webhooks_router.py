"""`/v1/webhooks`: endpoint CRUD, delivery history and redelivery (scope `admin`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import Conflict
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import get_scoped, path_object, scoped
from app.identity.principal import Principal, require
from app.integrations import webhooks
from app.integrations.schemas import (
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from app.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(tags=["webhooks"])
_webhook = path_object(WebhookEndpoint, "webhook_id", what="Webhook", scope="admin")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated"}, 403: {"description": "Missing the admin scope"},
    404: {"description": "No such webhook in this organization"},
    409: {"description": "The webhook is disabled (redeliver)"},
    422: {"description": "Invalid request, or a URL the server may not reach"},
    429: {"description": "Rate limited"},
}


@router.get("/webhooks", response_model=Page[WebhookOut], operation_id="list_webhooks",
            responses=_ERRORS)
def list_webhooks(page: PageParams = PAGE, db: Session = DB,
                  principal: Principal = Depends(require("admin"))) -> dict[str, Any]:
    return paginate(db, scoped(WebhookEndpoint, principal), WebhookEndpoint.id, page,
                    WebhookOut.model_validate)


@router.post("/webhooks", response_model=WebhookCreated, status_code=201,
             operation_id="create_webhook", responses=_ERRORS)
def create_webhook(body: WebhookCreate, request: Request, db: Session = DB,
                   principal: Principal = Depends(require("admin"))) -> WebhookCreated:
    row = webhooks.create_endpoint(db, principal.org_id, body.url, list(body.events),
                                   body.description, body.active)
    audit.record(db, principal, "webhook.create", request=request, target_type="webhook",
                 target_id=row.id, details={"url": row.url, "events": row.events})
    return WebhookCreated(**WebhookOut.model_validate(row).model_dump(), secret=row.secret)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, operation_id="get_webhook",
            responses=_ERRORS)
def get_webhook(webhook_id: str, row: WebhookEndpoint = Depends(_webhook)) -> WebhookEndpoint:
    return row


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut,
              operation_id="update_webhook", responses=_ERRORS)
def update_webhook(webhook_id: str, body: WebhookUpdate, request: Request,
                   db: Session = DB,
                   principal: Principal = Depends(require("admin")),
                   row: WebhookEndpoint = Depends(_webhook)) -> WebhookEndpoint:
    changes = body.model_dump(exclude_none=True)
    for name, new in changes.items():
        setattr(row, name, new)
    audit.record(db, principal, "webhook.update", request=request, target_type="webhook",
                 target_id=row.id, details=changes)
    db.flush()
    return row


@router.delete("/webhooks/{webhook_id}", status_code=204, operation_id="delete_webhook",
               responses=_ERRORS)
def delete_webhook(webhook_id: str, request: Request, db: Session = DB,
                   principal: Principal = Depends(require("admin")),
                   row: WebhookEndpoint = Depends(_webhook)) -> Response:
    # Deliveries go with it (FK cascade); a queued attempt then finds nothing and stops.
    audit.record(db, principal, "webhook.delete", request=request, target_type="webhook",
                 target_id=row.id, details={"url": row.url})
    db.delete(row)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut],
            operation_id="list_webhook_deliveries", responses=_ERRORS)
def list_deliveries(webhook_id: str, page: PageParams = PAGE,
                    status: DeliveryStatus | None = Query(None, description="Only this status."),
                    db: Session = DB,
                    principal: Principal = Depends(require("admin")),
                    row: WebhookEndpoint = Depends(_webhook)) -> dict[str, Any]:
    stmt = scoped(WebhookDelivery, principal).where(WebhookDelivery.endpoint_id == row.id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(db, stmt, WebhookDelivery.id, page, DeliveryOut.model_validate)


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryOut,
            operation_id="get_webhook_delivery", responses=_ERRORS)
def get_delivery(webhook_id: str, delivery_id: str, db: Session = DB,
                 principal: Principal = Depends(require("admin")),
                 row: WebhookEndpoint = Depends(_webhook)) -> WebhookDelivery:
    return get_scoped(db, WebhookDelivery, delivery_id, principal, what="Delivery",
                      endpoint_id=row.id)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
             response_model=DeliveryOut, status_code=202,
             operation_id="redeliver_webhook_delivery", responses=_ERRORS)
def redeliver(webhook_id: str, delivery_id: str, request: Request,
              db: Session = DB, principal: Principal = Depends(require("admin")),
              row: WebhookEndpoint = Depends(_webhook)) -> WebhookDelivery:
    original = get_scoped(db, WebhookDelivery, delivery_id, principal, what="Delivery",
                          endpoint_id=row.id)
    if not row.active:
        raise Conflict("This webhook is disabled; enable it (PATCH active=true) first.")
    delivery = webhooks.redeliver(db, original)
    audit.record(db, principal, "webhook.redeliver", request=request,
                 target_type="webhook_delivery", target_id=delivery.id,
                 details={"webhook_id": row.id, "redelivery_of": original.id})
    return delivery
