"""Password reset by mailed link, and password change for a signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from sqlalchemy.orm import Session

from app.core.deps import DB
from app.core.errors import Forbidden, Unauthorized
from app.identity import login_throttle, password_reset, service
from app.identity.principal import Principal, get_principal
from app.identity.schemas import PasswordChange, PasswordResetComplete, PasswordResetRequest

router = APIRouter(prefix="/v1", tags=["identity"])


def signed_in_user(principal: Principal = Depends(get_principal)) -> Principal:
    if principal.user is None or principal.session is None:
        raise Forbidden("Only a signed-in user can change their password.")
    return principal


@router.post("/auth/password-reset", status_code=202, operation_id="request_password_reset")
def request_password_reset(body: PasswordResetRequest, request: Request,
                           tasks: BackgroundTasks) -> dict[str, str]:
    """Mail a one-time link if the email has an account. Same answer, and the same work
    before answering, whether or not it does: the lookup happens after the answer."""
    login_throttle.count_address(request)  # one address cannot mail every account we have
    tasks.add_task(password_reset.request_reset, body.email,
                   login_throttle.client_address(request),
                   request.headers.get("user-agent", ""))
    return {"detail": "If an account exists for this email, a link to reset its password "
                      "is on its way."}


@router.post("/auth/password-reset/{token}", status_code=204,
             operation_id="complete_password_reset")
def complete_password_reset(token: str, body: PasswordResetComplete, request: Request,
                            db: Session = DB) -> Response:
    """Set the new password (the policy applies); every session of the account ends."""
    password_reset.complete(db, token, body.password, request)
    return Response(status_code=204)


@router.post("/auth/password", status_code=204, operation_id="change_password")
def change_password(body: PasswordChange, request: Request, db: Session = DB,
                    principal: Principal = Depends(signed_in_user)) -> Response:
    """Change your own password; every other session of yours ends (this one stays)."""
    user, session = principal.user, principal.session
    assert user is not None and session is not None
    # The current password is a secret a stolen session must not be able to guess at will.
    try:
        with login_throttle.attempt(user.email, request):
            service.authenticate(db, user.email, body.current_password)
    except Unauthorized:
        raise Forbidden("The current password is wrong.") from None
    service.set_password(db, user, body.new_password, field="new_password",
                         keep_session_id=session.id)
    password_reset.record(db, user, "auth.password_change", request)
    return Response(status_code=204)
