"""Who is calling: resolved once per request from an API key or a session cookie."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core import bookkeeping
from app.core.deps import DB
from app.core.errors import Forbidden, Unauthorized
from app.core.warmup import NO_ID, warm_up_step
from app.identity.authorization import OPERATOR_KEY_ROLE, ROLE_SCOPES, authorize, key_grant
from app.identity.security import matches, parse_api_key, sha256_hex
from app.models import ApiKey, Membership, Organization, User, UserSession

SESSION_COOKIE = "atelier_session"
CSRF_COOKIE = "atelier_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Principal:
    organization: Organization
    type: str  # "user" | "api_key"
    scopes: frozenset[str]
    user: User | None = None
    role: str | None = None
    api_key: ApiKey | None = None
    session: UserSession | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def org_id(self) -> str:
        return self.organization.id

    @property
    def member_user_id(self) -> str | None:
        """The member this principal acts for: the user, or the key's creator (None: operator)."""
        if self.user is not None:
            return self.user.id
        return self.api_key.created_by_user_id if self.api_key is not None else None

    @property
    def actor_id(self) -> str:
        if self.api_key is not None:
            return self.api_key.id
        assert self.user is not None
        return self.user.id

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"api_key:{self.api_key.name}"
        assert self.user is not None
        return f"user:{self.user.email}"


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


# Built once: constructing this four-table statement (and its cache key) on every request was
# more than half of the lookup's cost (1.8 -> 0.8 ms with its transaction, on this project's box).
_KEY_LOOKUP = (
    select(ApiKey, Organization, Membership.role, User.is_active)
    .join(Organization, Organization.id == ApiKey.org_id)
    .outerjoin(Membership, (Membership.org_id == ApiKey.org_id)
               & (Membership.user_id == ApiKey.created_by_user_id))
    .outerjoin(User, User.id == Membership.user_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)

warm_up_step(lambda db: db.execute(_KEY_LOOKUP, {"prefix": NO_ID}).first())


def no_one() -> Principal:
    """A principal of an organization that does not exist: the warm-up's (app.core.warmup)."""
    return Principal(organization=Organization(id=NO_ID), type="api_key", scopes=frozenset())


def _from_api_key(db: Session, raw: str) -> Principal:
    prefix = parse_api_key(raw)
    # One round trip for the key, its org and its creator's current role: this runs on every
    # API-key request. The joins are on the key's own org, so no other org's row can come back.
    row = db.execute(_KEY_LOOKUP, {"prefix": prefix}).first() if prefix else None
    if row is None or not matches(row.ApiKey.key_hash, raw):
        raise Unauthorized("Invalid API key.")
    key, org = row.ApiKey, row.Organization
    now = datetime.now(UTC)
    if key.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.")
    expires = _aware(key.expires_at)
    if expires is not None and expires <= now:
        raise Unauthorized("This API key has expired.")
    role = _key_role(key, row.role, row.is_active)
    last = _aware(key.last_used_at)
    if last is None or now - last > bookkeeping.RESOLUTION:
        # Noted only: a thread writes it within a second, for every key at once, outside any
        # request (app.core.bookkeeping). This request already sees it.
        bookkeeping.note_key_used(key.id)
        set_committed_value(key, "last_used_at", now)
    # A key never exceeds the member who made it: capped by their role as it is now.
    return Principal(organization=org, type="api_key", scopes=key_grant(key.scopes, role),
                     role=role, api_key=key)


def _key_role(key: ApiKey, role: str | None, is_active: bool | None) -> str:
    """The creator's current role in the key's org; a key outliving its member is refused."""
    if key.created_by_user_id is None:
        return OPERATOR_KEY_ROLE
    if role is None or not is_active:
        raise Unauthorized("This API key has been revoked: its creator is no longer a member.")
    return str(role)


def _from_session(db: Session, request: Request, token: str) -> Principal:
    sess = db.scalar(select(UserSession).where(UserSession.token_hash == sha256_hex(token)))
    now = datetime.now(UTC)
    if sess is None or sess.revoked_at is not None or _aware(sess.expires_at) <= now:  # type: ignore[operator]
        raise Unauthorized("Your session has ended; please sign in again.")
    membership = db.scalar(
        select(Membership).where(
            Membership.user_id == sess.user_id, Membership.org_id == sess.org_id
        )
    )
    user = db.get(User, sess.user_id)
    if membership is None or user is None or not user.is_active:
        raise Unauthorized("Your session has ended; please sign in again.")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or sent != sess.csrf_token:
            raise Forbidden("Missing or wrong CSRF token (send the X-CSRF-Token header).")
    return Principal(
        organization=membership.organization,
        type="user",
        scopes=frozenset(ROLE_SCOPES[membership.role]),
        user=user,
        role=membership.role,
        session=sess,
    )


async def get_principal(request: Request, db: Session = DB) -> Principal:
    """The dependency: async, so a principal already resolved for this request (the rate
    limiter resolves it first) costs no trip to the thread pool."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    return await run_in_threadpool(principal_of, request, db)


def principal_of(request: Request, db: Session) -> Principal:
    """Resolve (once per request) the API key or session behind ``request``."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Use 'Authorization: Bearer <api key>'.")
        principal = _from_api_key(db, value.strip())
    elif token := request.cookies.get(SESSION_COOKIE):
        principal = _from_session(db, request, token)
    else:
        raise Unauthorized(
            "Authentication required: an API key (Authorization: Bearer atl_...) or a session.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


def require(scope: str, *, min_role: str | None = None):  # type: ignore[no-untyped-def]
    """Declare per endpoint which scope (and, for users, which role) it needs."""

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:
        authorize(principal, scope, min_role)  # the rules live in app.identity.authorization
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
