"""Members of an organization and their roles."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import path_object, scoped
from app.identity.authorization import check_role_change, check_see_members, revoke_keys_of
from app.identity.invitations_router import invite
from app.identity.principal import (
    Principal,
    get_principal,
    require,
)
from app.identity.schemas import (
    InvitationCreated,
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
def list_members(page: PageParams = PAGE, db: Session = DB,
                 principal: Principal = Depends(get_principal)) -> dict:
    check_see_members(principal)  # emails: any member signed in; a key needs 'admin'
    return paginate(db, scoped(Membership, principal), Membership.id, page, _member_out)


@router.post("/members", response_model=InvitationCreated, status_code=201,
             operation_id="add_member")
def add_member(body: MemberCreate, request: Request, tasks: BackgroundTasks, db: Session = DB,
               principal: Principal = Depends(require("admin", min_role="admin"))
               ) -> InvitationCreated:
    """Invites the email (same as POST /v1/invitations): they join when they accept."""
    return invite(db, principal, body, request, tasks)


@router.patch("/members/{member_id}", response_model=MemberOut, operation_id="update_member")
def update_member(member_id: str, body: MemberUpdate, request: Request,
                  db: Session = DB,
                  principal: Principal = Depends(require("admin", min_role="admin")),
                  m: Membership = Depends(_member)) -> MemberOut:
    check_role_change(db, principal, m, body.role)
    m.role = body.role
    audit.record(db, principal, "member.update", request=request, target_type="membership",
                 target_id=m.id, details={"role": body.role})
    return _member_out(m)


@router.delete("/members/{member_id}", status_code=204, operation_id="remove_member")
def remove_member(member_id: str, request: Request, db: Session = DB,
                  principal: Principal = Depends(require("admin", min_role="admin")),
                  m: Membership = Depends(_member)) -> Response:
    check_role_change(db, principal, m, None)
    # Their keys stop working in this same transaction, not at the next request.
    revoke_keys_of(db, m.org_id, m.user_id)
    audit.record(db, principal, "member.remove", request=request, target_type="membership",
                 target_id=m.id, details={"email": m.user.email})
    db.delete(m)
    return Response(status_code=204)
