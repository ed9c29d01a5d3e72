"""Sign-in, sign-out, org switching and who-am-I."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import audit
from app.core.deps import DB
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.settings import get_settings
from app.identity import login_throttle, service
from app.identity.principal import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    get_principal,
    principal_of,
)
from app.identity.schemas import (
    LoginIn,
    MeOut,
    OrganizationOut,
    PrincipalOut,
    SwitchOrgIn,
)
from app.models import Membership, User

router = APIRouter(prefix="/v1", tags=["identity"])


def _me(db: Session, principal: Principal) -> MeOut:
    if principal.user is not None:
        p = PrincipalOut(
            type="user", id=principal.user.id, name=principal.user.name or principal.user.email,
            email=principal.user.email, role=principal.role,  # type: ignore[arg-type]
        )
        orgs = [
            OrganizationOut.model_validate(m.organization)
            for m in service.memberships_of(db, principal.user)
        ]
    else:
        assert principal.api_key is not None
        p = PrincipalOut(type="api_key", id=principal.api_key.id, name=principal.api_key.name)
        orgs = []
    return MeOut(
        organization=OrganizationOut.model_validate(principal.organization),
        principal=p,
        scopes=sorted(principal.scopes),
        organizations=orgs,
        csrf_token=principal.session.csrf_token if principal.session else None,
    )


@router.get("/me", response_model=MeOut, operation_id="get_me")
def get_me(principal: Principal = Depends(get_principal), db: Session = DB) -> MeOut:
    return _me(db, principal)


def _set_session_cookies(response: Response, token: str, csrf: str) -> None:
    s = get_settings()
    common = {"max_age": s.session_max_age_s, "secure": s.session_cookie_secure,
              "samesite": "lax", "path": "/"}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, **common)  # type: ignore[arg-type]
    # Readable by the dashboard's JS, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]


def open_session(db: Session, request: Request, response: Response, user: User,
                 org_id: str) -> MeOut:
    """Start a new session in ``org_id``; the session the request carried (if any) ends."""
    service.end_session_by_token(db, request.cookies.get(SESSION_COOKIE))
    sess, token = service.start_session(db, user, org_id, get_settings().session_max_age_s)
    _set_session_cookies(response, token, sess.csrf_token)
    membership = db.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.org_id == org_id)
    )
    assert membership is not None
    principal = service.principal_for(membership, sess)
    audit.record(db, principal, "auth.login", request=request, target_type="user",
                 target_id=user.id)
    return _me(db, principal)


@router.post("/auth/login", response_model=MeOut, operation_id="login",
             responses={401: {"description": "Wrong email or password"},
                        429: {"description": "Too many failed sign-ins; see Retry-After"}})
def login(body: LoginIn, request: Request, response: Response,
          db: Session = DB) -> MeOut:
    # Counted per email and per client address; over a limit even the right password is 429.
    with login_throttle.attempt(body.email, request):
        user = service.authenticate(db, body.email, body.password)
    memberships = service.memberships_of(db, user)
    if not memberships:
        raise Unauthorized("This account does not belong to any organization.")
    chosen = next((m for m in memberships if m.org_id == body.org_id), None)
    if body.org_id and chosen is None:
        raise Unauthorized("You are not a member of that organization.")
    # Rotation: a fresh token, and the cookie this request carried (if any) is revoked.
    return open_session(db, request, response, user, (chosen or memberships[0]).org_id)


@router.post("/auth/switch-org", response_model=MeOut, operation_id="switch_org")
def switch_org(body: SwitchOrgIn, request: Request, response: Response,
               principal: Principal = Depends(get_principal),
               db: Session = DB) -> MeOut:
    if principal.user is None or principal.session is None:
        raise Forbidden("Only a signed-in user can switch organizations.")
    if not any(m.org_id == body.org_id for m in service.memberships_of(db, principal.user)):
        raise NotFound(f"Organization '{body.org_id}' not found.")
    principal.session.revoked_at = datetime.now(UTC)
    return open_session(db, request, response, principal.user, body.org_id)


@router.post("/auth/logout", status_code=204, operation_id="logout")
def logout(request: Request, response: Response, db: Session = DB) -> Response:
    try:
        principal = principal_of(request, db)
    except Unauthorized:
        principal = None
    if principal is not None and principal.session is not None:
        principal.session.revoked_at = datetime.now(UTC)
        audit.record(db, principal, "auth.logout", request=request)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


