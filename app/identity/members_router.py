"""Members of an organization and their roles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import Forbidden
from app.core.pagination import Page, PageParams, paginate
from app.core.tenancy import path_object, scoped
from app.identity import service
from app.identity.principal import (
    Principal,
    get_principal,
    require,
)
from app.identity.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
)
from app.models import Membership

router = APIRouter(prefix="/v1", tags=["identity"])
_member = path_object(Membership, "member_id", what="Member", scope="admin")

# --- members ----------------------------------------------------------------------------------

def _member_out(m: Membership) -> MemberOut:
    return MemberOut(id=m.id, user_id=m.user_id, email=m.user.email, name=m.user.name,
                     role=m.role, created_at=m.created_at)  # type: ignore[arg-type]


@router.get("/members", response_model=Page[MemberOut], operation_id="list_members")
def list_members(page: PageParams = Depends(), db: Session = DB,
                 principal: Principal = Depends(get_principal)) -> dict:
    return paginate(db, scoped(Membership, principal), Membership.id, page, _member_out)


@router.post("/members", response_model=MemberOut, status_code=201, operation_id="add_member")
def add_member(body: MemberCreate, request: Request, db: Session = DB,
               principal: Principal = Depends(require("admin", min_role="admin"))) -> MemberOut:
    if body.role == "owner" and principal.role not in (None, "owner"):
        raise Forbidden("Only an owner can grant the owner role.")
    user = service.get_or_create_user(db, body.email, body.password, body.name)
    m = service.add_member(db, principal.organization, user, body.role)
    audit.record(db, principal, "member.add", request=request, target_type="membership",
                 target_id=m.id, details={"email": user.email, "role": body.role})
    return _member_out(m)


@router.patch("/members/{member_id}", response_model=MemberOut, operation_id="update_member")
def update_member(member_id: str, body: MemberUpdate, request: Request,
                  db: Session = DB,
                  principal: Principal = Depends(require("admin", min_role="admin")),
                  m: Membership = Depends(_member)) -> MemberOut:
    service.check_role_change(db, principal.role, m, body.role)
    m.role = body.role
    audit.record(db, principal, "member.update", request=request, target_type="membership",
                 target_id=m.id, details={"role": body.role})
    return _member_out(m)


@router.delete("/members/{member_id}", status_code=204, operation_id="remove_member")
def remove_member(member_id: str, request: Request, db: Session = DB,
                  principal: Principal = Depends(require("admin", min_role="admin")),
                  m: Membership = Depends(_member)) -> Response:
    service.check_role_change(db, principal.role, m, "viewer" if m.role == "owner" else m.role)
    audit.record(db, principal, "member.remove", request=request, target_type="membership",
                 target_id=m.id, details={"email": m.user.email})
    db.delete(m)
    return Response(status_code=204)
