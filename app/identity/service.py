"""Organizations, users, sessions, API keys and memberships."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Forbidden, Unauthorized, Unprocessable
from app.identity.security import (
    ROLE_RANK,
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


def authenticate(db: Session, email: str, password: str) -> User:
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise Unauthorized("Wrong email or password.")
    return user


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


def check_role_change(db: Session, actor_role: str | None, member: Membership, role: str) -> None:
    """Admins manage members below owner; only owners touch owners; an org keeps one owner."""
    if actor_role is not None and ROLE_RANK[actor_role] < ROLE_RANK["owner"]:
        if "owner" in (member.role, role):
            raise Forbidden("Only an owner can grant or change the owner role.")
    if member.role == "owner" and role != "owner":
        owners = db.scalar(
            select(func.count()).select_from(Membership).where(
                Membership.org_id == member.org_id, Membership.role == "owner"
            )
        )
        if (owners or 0) <= 1:
            raise Unprocessable("An organization must keep at least one owner.")
