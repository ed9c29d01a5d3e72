"""Invitations: an admin invites an email with a role; the invitee accepts the one-time link."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import Forbidden, Unauthorized
from app.core.pagination import PAGE, Page, PageParams, paginate
from app.core.tenancy import path_object, scoped
from app.identity import invitations, service
from app.identity.auth_router import open_session
from app.identity.principal import (
    SESSION_COOKIE,
    Principal,
    principal_of,
    require,
)
from app.identity.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationInfo,
    InvitationOrg,
    InvitationOut,
    MeOut,
)
from app.models import Invitation

router = APIRouter(prefix="/v1", tags=["identity"])
_invitation = path_object(Invitation, "invitation_id", what="Invitation", scope="admin")
_ADMIN = Depends(require("admin", min_role="admin"))


def invite(db: Session, principal: Principal, body: InvitationCreate, request: Request,
           tasks: BackgroundTasks) -> InvitationCreated:
    """Create, audit and (after commit) mail an invitation; shared with POST /v1/members."""
    inv, token = invitations.create(db, principal, body.email, body.role)
    audit.record(db, principal, "invitation.create", request=request, target_type="invitation",
                 target_id=inv.id, details={"email": inv.email, "role": inv.role})
    who = principal.user.name or principal.user.email if principal.user else "An administrator"
    tasks.add_task(invitations.send, invitations.mail_invitation(inv, token, who))
    return InvitationCreated(**InvitationOut.model_validate(inv).model_dump(),
                             url=invitations.link(token))


@router.post("/invitations", response_model=InvitationCreated, status_code=201,
             operation_id="create_invitation")
def create_invitation(body: InvitationCreate, request: Request, tasks: BackgroundTasks,
                      db: Session = DB, principal: Principal = _ADMIN) -> InvitationCreated:
    return invite(db, principal, body, request, tasks)


@router.get("/invitations", response_model=Page[InvitationOut], operation_id="list_invitations")
def list_invitations(page: PageParams = PAGE, db: Session = DB,
                     principal: Principal = _ADMIN) -> dict:
    stmt = scoped(Invitation, principal).where(
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
        Invitation.expires_at > datetime.now(UTC))
    return paginate(db, stmt, Invitation.id, page, InvitationOut.model_validate)


@router.delete("/invitations/{invitation_id}", status_code=204,
               operation_id="revoke_invitation")
def revoke_invitation(invitation_id: str, request: Request, db: Session = DB,
                      principal: Principal = _ADMIN,
                      inv: Invitation = Depends(_invitation)) -> Response:
    if invitations.revoke(db, principal, inv):
        audit.record(db, principal, "invitation.revoke", request=request,
                     target_type="invitation", target_id=inv.id, details={"email": inv.email})
    return Response(status_code=204)


@router.get("/invitations/{token}", response_model=InvitationInfo,
            operation_id="get_invitation")
def get_invitation(token: str, db: Session = DB) -> InvitationInfo:
    """What a link offers: the org's name, the role, the email, whether its account exists."""
    inv = invitations.by_token(db, token)
    return InvitationInfo(organization=InvitationOrg(name=inv.organization.name), role=inv.role,  # type: ignore[arg-type]
                          email=inv.email, account_exists=invitations.account_exists(db, inv.email),
                          expires_at=inv.expires_at)


def _signed_in(request: Request, db: Session = DB) -> Principal | None:
    """The signed-in user, if any (CSRF checked); an API key cannot accept for a person."""
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        return None
    try:
        principal = principal_of(request, db)
    except Unauthorized:
        if "authorization" in request.headers:
            raise
        return None  # an ended session: treat as signed out (a missing CSRF token is a 403)
    if principal.user is None:
        raise Forbidden("An invitation is accepted by a person: sign in, or create the account.")
    return principal


@router.post("/invitations/{token}/accept", response_model=MeOut,
             operation_id="accept_invitation")
def accept_invitation(token: str, request: Request, response: Response,
                      body: InvitationAccept | None = None, db: Session = DB,
                      principal: Principal | None = Depends(_signed_in)) -> MeOut:
    """Signed in as the invited email: join. Otherwise `{name, password}` makes the account.

    Either way the answer signs the caller into the org they joined.
    """
    body = body or InvitationAccept()
    user = principal.user if principal else None
    inv, membership = invitations.accept(db, token, signed_in=user, name=body.name,
                                         password=body.password)
    joined = service.principal_for(membership)
    audit.record(db, joined, "invitation.accept", request=request, target_type="invitation",
                 target_id=inv.id, details={"email": inv.email, "role": inv.role,
                                            "new_account": user is None})
    return open_session(db, request, response, membership.user, inv.org_id)
