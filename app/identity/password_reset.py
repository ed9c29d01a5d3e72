"""Password reset by a one-time, expiring link sent by mail; only the token's hash is stored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core import audit
from app.core.db import session_scope
from app.core.errors import NotFound
from app.core.settings import get_settings
from app.identity import mail, service
from app.identity.security import new_token, sha256_hex
from app.integrations import ratelimit
from app.integrations.config import value
from app.models import PasswordReset, User

log = logging.getLogger("atelier.identity")
INVALID = "This password-reset link is invalid, used or expired; ask for a new one."


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def record(db: Session, user: User, action: str, request: Request | None,
           details: dict[str, object] | None = None) -> None:
    """An account event, written to the audit trail of every org the user belongs to."""
    for m in service.memberships_of(db, user):
        audit.record(db, service.principal_for(m), action, request=request,
                     target_type="user", target_id=user.id, details=details)


def issue(db: Session, user: User) -> str:
    """A new reset token for ``user`` (earlier unused ones stop working)."""
    now = datetime.now(UTC)
    db.execute(update(PasswordReset).where(PasswordReset.user_id == user.id,
                                           PasswordReset.used_at.is_(None))
               .values(used_at=now).execution_options(synchronize_session=False))
    token = new_token()
    db.add(PasswordReset(user_id=user.id, token_hash=sha256_hex(token),
                         expires_at=now + timedelta(seconds=get_settings().password_reset_ttl_s)))
    db.flush()
    return token


def link(token: str) -> str:
    return f"{get_settings().base_url.rstrip('/')}/reset-password/{token}"


def request_reset(email: str, address: str, user_agent: str) -> None:
    """Mail a reset link to ``email`` if it names an active account; runs after the answer.

    The endpoint only schedules this (a background task), so its answer and its timing are
    the same whether or not the account exists; the work and the mail happen afterwards in a
    transaction of their own, committed before the mail is sent.
    """
    email = email.strip().lower()
    # A mailbox is not flooded: past the limit the request is answered but nothing is sent.
    limit = ratelimit.parse_limit(value("password_reset_limit_per_account"))
    if limit is not None and not ratelimit.hit(f"reset:{sha256_hex(email)}", limit)[0]:
        log.info("password reset: limit reached for one address; nothing sent")
        return
    with session_scope() as db:
        user = db.scalar(select(User).where(User.email == email))
        if user is None or not user.is_active:
            return
        token = issue(db, user)
        # The request has been answered: its client and agent are carried here for the trail.
        origin = Request({"type": "http", "client": (address, 0),
                          "headers": [(b"user-agent", user_agent.encode()[:500])]})
        record(db, user, "auth.password_reset.request", origin)
        to = user.email
    minutes = get_settings().password_reset_ttl_s // 60
    body = (f"Someone (hopefully you) asked to reset the password of your Atelier account "
            f"{to}.\n\nSet a new password here (the link works once, for {minutes} "
            f"minutes):\n\n{link(token)}\n\nIf you did not ask, ignore this message; your "
            "password stays as it is.\n")
    mail.send(to, "Reset your Atelier password", body)


def _valid(db: Session, token: str, *, for_update: bool = False) -> PasswordReset:
    stmt = select(PasswordReset).where(PasswordReset.token_hash == sha256_hex(token))
    row = db.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None or row.used_at is not None or _aware(row.expires_at) <= datetime.now(UTC):
        raise NotFound(INVALID)
    return row


def complete(db: Session, token: str, password: str, request: Request) -> User:
    """Set the new password, spend the token, end every session of the user."""
    row = _valid(db, token)
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        raise NotFound(INVALID)
    service.set_password(db, user, password)  # the policy applies (422 before spending)
    # One-time even under concurrent use: only one request turns used_at from NULL.
    spent = db.execute(update(PasswordReset).where(PasswordReset.id == row.id,
                                                   PasswordReset.used_at.is_(None))
                       .values(used_at=datetime.now(UTC))
                       .execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(INVALID)
    record(db, user, "auth.password_reset", request)
    return user
