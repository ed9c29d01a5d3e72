"""Model links (``/v1/models/{model_id}/links``) and the public file route they point to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import NotFound
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import get_scoped, scoped
from app.identity.principal import Principal, require
from app.library import links
from app.library.naming import download_name
from app.library.router import model_read, model_write
from app.library.schemas import ModelLinkCreate, ModelLinkCreated, ModelLinkFile, ModelLinkOut
from app.models import Model, ModelLink
from app.storage.base import ObjectNotFound, Storage
from app.storage.factory import STORAGE
from app.storage.router import SECURITY_HEADERS
from app.storage.signing import content_disposition

router = APIRouter(prefix="/v1", tags=["library"])
_CHUNK = 1 << 20


@router.post(
    "/models/{model_id}/links", response_model=ModelLinkCreated, status_code=201,
    operation_id="create_model_link",
    responses={409: {"description": "The model has no files, or already has the maximum "
                                   "number of active links."}},
)
def create_model_link(
    model_id: str,
    request: Request,
    body: ModelLinkCreate | None = None,
    model: Model = Depends(model_write),
    principal: Principal = Depends(require("models:write")),
    db: Session = DB,
) -> ModelLinkCreated:
    """A long-lived link to the model's files that needs no API key (InvokeAI's "install
    from URL"): one URL per file, shown only in this answer. Revoke it with DELETE."""
    body = body or ModelLinkCreate()
    link, token = links.create(db, principal, model, body.name.strip(), body.expires_in_days)
    audit.record(db, principal, "model_link.create", request=request, target_type="model",
                 target_id=model.id, details={"link_id": link.id, "name": link.name,
                                              "expires_at": link.expires_at.isoformat()})
    return ModelLinkCreated(**ModelLinkOut.model_validate(link).model_dump(),
                            files=[ModelLinkFile(**f) for f in links.file_urls(model, token)])


@router.get("/models/{model_id}/links", response_model=Page[ModelLinkOut],
            operation_id="list_model_links")
def list_model_links(
    model_id: str,
    page: PageParams = PAGE,
    model: Model = Depends(model_read),
    principal: Principal = Depends(require("models:read")),
    db: Session = DB,
) -> dict[str, Any]:
    """The model's links, newest first, revoked and expired ones included (no tokens)."""
    stmt = scoped(ModelLink, principal).where(ModelLink.model_id == model.id)
    return paginate(db, stmt, ModelLink.id, page, ModelLinkOut.model_validate)


@router.delete("/models/{model_id}/links/{link_id}", status_code=204,
               operation_id="revoke_model_link")
def revoke_model_link(
    model_id: str,
    link_id: str,
    request: Request,
    model: Model = Depends(model_write),
    principal: Principal = Depends(require("models:write")),
    db: Session = DB,
) -> Response:
    """Revoke at once: the link's URLs answer 404 from the moment this returns."""
    link = get_scoped(db, ModelLink, link_id, principal, what="Link", model_id=model.id)
    if links.revoke(db, link):
        audit.record(db, principal, "model_link.revoke", request=request, target_type="model",
                     target_id=model.id, details={"link_id": link.id, "name": link.name})
    return Response(status_code=204)


@router.get(
    "/model-links/{token}/{filename:path}", operation_id="fetch_model_link_file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}},
                     "description": "The file, streamed."},
               404: {"description": "Unknown, revoked or expired link (one answer for all)."}},
)
def fetch_model_link_file(
    token: str, filename: str, db: Session = DB, storage: Storage = STORAGE
) -> StreamingResponse:
    """Public: the token in the path is the credential (no API key; InvokeAI cannot send
    one). Streamed through the API rather than redirected to storage, so a revoke leaves no
    second URL alive and the storage address never reaches the client."""
    model, entry = links.use(db, token, filename)
    info = storage.head(entry["key"])
    if info is None:
        raise NotFound(links.GONE)
    try:
        chunks = storage.stream(entry["key"], _CHUNK)
    except ObjectNotFound as exc:
        raise NotFound(links.GONE) from exc
    headers = {**SECURITY_HEADERS, "Content-Length": str(info.size), "Cache-Control": "no-store",
               "Content-Disposition": content_disposition(download_name(model, entry["name"]))}
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
