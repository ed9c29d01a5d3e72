"""Joining an org is an invitation the invitee accepts: nobody sets another person's password.

An admin invites an email with a role; the invitee gets a one-time, expiring link (only the
token's hash is stored). An existing account accepts while signed in as that email; a new
account chooses its own name and password on acceptance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.locking import lock_org
from app.core.settings import get_settings
from app.identity import mail, service
from app.identity.authorization import check_role_change
from app.identity.principal import Principal
from app.identity.security import new_token, sha256_hex
from app.models import Invitation, Membership, User

INVALID = "This invitation link is invalid, used, revoked or expired; ask for a new one."


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def is_pending(inv: Invitation, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return inv.accepted_at is None and inv.revoked_at is None and _aware(inv.expires_at) > now


def link(token: str) -> str:
    return f"{get_settings().base_url.rstrip('/')}/invite/{token}"


def create(db: Session, principal: Principal, email: str, role: str) -> tuple[Invitation, str]:
    """A new invitation (replacing a pending one for the same email); returns (row, token)."""
    check_role_change(db, principal, None, role)  # admin scope and the right to grant the role
    lock_org(db, principal.org_id)  # one pending invitation per email, checked then written
    email = email.strip().lower()
    member = db.scalar(select(Membership.id).join(User, User.id == Membership.user_id)
                       .where(Membership.org_id == principal.org_id, User.email == email))
    if member is not None:
        raise Conflict(f"{email} is already a member of this organization.")
    now = datetime.now(UTC)
    db.execute(update(Invitation).where(
        Invitation.org_id == principal.org_id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
    ).values(revoked_at=now).execution_options(synchronize_session=False))
    token = new_token()
    inv = Invitation(org_id=principal.org_id, email=email, role=role,
                     token_hash=sha256_hex(token), invited_by=principal.label,
                     expires_at=now + timedelta(seconds=get_settings().invitation_ttl_s))
    db.add(inv)
    db.flush()
    return inv, token


def mail_invitation(inv: Invitation, token: str, inviter: str) -> tuple[str, str, str]:
    """(to, subject, body) of the invitation mail; sent by the caller after commit."""
    days = max(1, get_settings().invitation_ttl_s // 86400)
    body = (f"{inviter} invited you to join {inv.organization.name} on Atelier as "
            f"{inv.role}.\n\nAccept here (the link works once, for {days} day(s)):\n\n"
            f"{link(token)}\n\nIf you did not expect this, ignore this message.\n")
    return inv.email, f"Join {inv.organization.name} on Atelier", body


def send(message: tuple[str, str, str]) -> None:
    mail.send(*message)


def by_token(db: Session, token: str) -> Invitation:
    """The pending invitation a link names, else 404 (unknown, used, revoked, expired)."""
    inv = db.scalar(select(Invitation).where(Invitation.token_hash == sha256_hex(token)))
    if inv is None or not is_pending(inv):
        raise NotFound(INVALID)
    return inv


def account_exists(db: Session, email: str) -> bool:
    return db.scalar(select(User.id).where(User.email == email)) is not None


def accept(db: Session, token: str, *, signed_in: User | None, name: str | None,
           password: str | None) -> tuple[Invitation, Membership]:
    """Accept as the signed-in user (same email), or create the invited account."""
    inv = by_token(db, token)
    lock_org(db, inv.org_id)
    if signed_in is not None:
        if signed_in.email != inv.email:
            raise Forbidden("This invitation was sent to another email address. Sign in as "
                            "that address to accept it.")
        user = signed_in
    elif account_exists(db, inv.email):
        raise Conflict("An account with this email already exists: sign in as it, then "
                       "accept the invitation.", extra={"account_exists": True})
    else:
        if not password:
            raise_missing("password", "Choose a password for your new account.")
        user = service.create_user(db, inv.email, password or "", name or "")
    # One-time even under concurrent acceptance: only one request turns accepted_at from NULL.
    taken = db.execute(update(Invitation).where(
        Invitation.id == inv.id, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
    ).values(accepted_at=datetime.now(UTC), accepted_by_user_id=user.id)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(INVALID)
    membership = service.add_member(db, inv.organization, user, inv.role)
    return inv, membership


def raise_missing(field: str, msg: str) -> None:
    raise Unprocessable(f"{field}: {msg}", errors=[{"loc": ["body", field], "msg": msg}])


def revoke(db: Session, principal: Principal, inv: Invitation) -> bool:
    """Revoke a pending invitation; False when it was no longer pending."""
    check_role_change(db, principal, None, inv.role)  # only who may grant it may withdraw it
    if not is_pending(inv):
        return False
    inv.revoked_at = datetime.now(UTC)
    return True
