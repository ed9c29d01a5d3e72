"""Organizations, users, sessions, API keys and memberships."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Unauthorized
from app.identity.authorization import ROLE_SCOPES
from app.identity.passwords import check_password
from app.identity.principal import Principal
from app.identity.security import (
    hash_password,
    new_api_key,
    new_token,
    sha256_hex,
    verify_password,
)
from app.models import ApiKey, Membership, Organization, User, UserSession


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48] or "org"


def create_organization(db: Session, name: str, *, slug: str | None = None) -> Organization:
    base = slugify(slug or name)
    candidate = base
    while db.scalar(select(Organization).where(Organization.slug == candidate)) is not None:
        candidate = f"{base}-{secrets.token_hex(2)}"
    org = Organization(name=name, slug=candidate)
    db.add(org)
    db.flush()
    return org


def get_or_create_user(db: Session, email: str, password: str | None, name: str = "") -> User:
    email = email.strip().lower()
    user = db.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email,
            name=name,
            # A member added without a password cannot log in until one is set.
            password_hash=hash_password(password or secrets.token_urlsafe(32)),
        )
        db.add(user)
        db.flush()
    return user


def add_member(db: Session, org: Organization, user: User, role: str) -> Membership:
    exists = db.scalar(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if exists is not None:
        raise Conflict(f"{user.email} is already a member of this organization.")
    m = Membership(org_id=org.id, user_id=user.id, role=role)
    db.add(m)
    db.flush()
    return m


def create_api_key(
    db: Session,
    org_id: str,
    name: str,
    scopes: list[str],
    *,
    created_by: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    key, prefix, key_hash = new_api_key()
    row = ApiKey(
        org_id=org_id, name=name, prefix=prefix, key_hash=key_hash, scopes=scopes,
        created_by_user_id=created_by, expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row, key


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # A real hash with the same parameters, of a password nobody knows.
    return hash_password(new_token())


def authenticate(db: Session, email: str, password: str) -> User:
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    # An unknown email costs the same argon2 work as a known one: timing reveals no account.
    ok = verify_password(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not user.is_active or not ok:
        raise Unauthorized("Wrong email or password.")
    return user


def create_user(db: Session, email: str, password: str, name: str = "") -> User:
    """A new account with a password its owner chose (the policy applies)."""
    email = email.strip().lower()
    check_password(password, email=email)
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email already exists; sign in instead.")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    db.add(user)
    db.flush()
    return user


def set_password(db: Session, user: User, password: str, *, field: str = "password",
                 keep_session_id: str | None = None) -> int:
    """Change a password (policy applies) and end every session but ``keep_session_id``."""
    check_password(password, email=user.email, field=field)
    user.password_hash = hash_password(password)
    return end_sessions(db, user.id, keep_session_id=keep_session_id)


def end_sessions(db: Session, user_id: str, *, keep_session_id: str | None = None) -> int:
    stmt = update(UserSession).where(UserSession.user_id == user_id,
                                     UserSession.revoked_at.is_(None))
    if keep_session_id is not None:
        stmt = stmt.where(UserSession.id != keep_session_id)
    result = db.execute(stmt.values(revoked_at=datetime.now(UTC))
                        .execution_options(synchronize_session="fetch"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_session_by_token(db: Session, token: str | None) -> None:
    """Revoke the session a cookie names (login rotates it away), whoever it belonged to."""
    if token:
        db.execute(update(UserSession).where(UserSession.token_hash == sha256_hex(token),
                                             UserSession.revoked_at.is_(None))
                   .values(revoked_at=datetime.now(UTC))
                   .execution_options(synchronize_session="fetch"))


def memberships_of(db: Session, user: User) -> list[Membership]:
    return list(
        db.scalars(
            select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)
        )
    )


def start_session(
    db: Session, user: User, org_id: str, max_age_s: int
) -> tuple[UserSession, str]:
    token = new_token()
    sess = UserSession(
        org_id=org_id,
        user_id=user.id,
        token_hash=sha256_hex(token),
        csrf_token=new_token(),
        expires_at=datetime.now(UTC) + timedelta(seconds=max_age_s),
    )
    db.add(sess)
    db.flush()
    return sess, token



def principal_for(m: Membership, session: UserSession | None = None) -> Principal:
    """The principal a user acts as in one of their orgs (sign-in, audit of account events)."""
    return Principal(organization=m.organization, type="user",
                     scopes=frozenset(ROLE_SCOPES[m.role]), user=m.user, role=m.role,
                     session=session)
