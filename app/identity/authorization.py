"""Who may do what: the one module to audit for roles, scopes and role changes.

Rules (README "Roles and scopes" mirrors ROLE_SCOPES; tests/security/test_roles_and_keys.py
compares the two):
- A role holds the scopes in ROLE_SCOPES; ROLE_RANK orders roles for ``min_role`` checks.
- An API key acts for the member who created it: its role is the creator's *current* role and
  its scopes are the key's scopes intersected with that role's scopes (see ``key_grant``).
  A key whose creator is no longer an active member is refused. Keys made by the operator CLI
  (no creator) act with OPERATOR_KEY_ROLE at most.
- ``check_role_change`` decides every grant, change and removal of a membership:
  only owners grant, change or remove the owner role or an owner's membership; API keys never
  change ownership; nobody grants a role (or the scopes of a role) they do not hold; an org
  always keeps at least one owner, checked under the org's write lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.locking import lock_org
from app.models import ApiKey, Membership

if TYPE_CHECKING:
    from app.identity.principal import Principal

ALL_SCOPES = (
    "datasets:read", "datasets:write", "jobs:read", "jobs:write",
    "models:read", "models:write", "admin",
)
READ_SCOPES = tuple(s for s in ALL_SCOPES if s.endswith(":read"))
# What a new API key gets when its creator names no scopes: everything but admin.
DEFAULT_KEY_SCOPES = tuple(s for s in ALL_SCOPES if s != "admin")

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "owner": ALL_SCOPES,
    "admin": ALL_SCOPES,
    "member": DEFAULT_KEY_SCOPES,
    "viewer": READ_SCOPES,
}
ROLE_RANK: dict[str, int] = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}

# Keys made by `atelier api-keys create` have no creator: they act as an admin at most, and
# like every key they can never grant, change or remove the owner role.
OPERATOR_KEY_ROLE = "admin"


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes, de-duplicated and sorted; ValueError naming any unknown one."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; allowed: {list(ALL_SCOPES)}")
    return sorted(set(scopes))


def key_grant(key_scopes: list[str], role: str) -> frozenset[str]:
    """What a key may do: its own scopes, capped by its creator's current role."""
    # The admin scope is a superset on a key: it implies every other scope.
    wanted = set(ALL_SCOPES) if "admin" in key_scopes else set(key_scopes)
    return frozenset(wanted & set(ROLE_SCOPES[role]))


def authorize(principal: Principal, scope: str, min_role: str | None = None) -> None:
    """Raise Forbidden unless the principal holds ``scope`` (and at least ``min_role``)."""
    if scope not in principal.scopes:
        raise Forbidden(f"This action needs the '{scope}' scope.")
    if min_role is not None:
        if principal.role is None or ROLE_RANK[principal.role] < ROLE_RANK[min_role]:
            raise Forbidden(f"This action needs the '{min_role}' role or higher.")


def _current_role(db: Session, actor: Principal) -> str | None:
    """The actor's role as stored now (after the org lock), not as resolved earlier."""
    user_id = actor.member_user_id
    if user_id is None:  # operator key
        return OPERATOR_KEY_ROLE if actor.type == "api_key" else None
    return db.scalar(
        select(Membership.role).where(
            Membership.org_id == actor.org_id, Membership.user_id == user_id
        )
    )


def _owner_count(db: Session, org_id: str) -> int:
    return db.scalar(
        select(func.count()).select_from(Membership).where(
            Membership.org_id == org_id, Membership.role == "owner"
        )
    ) or 0


def check_role_change(
    db: Session, actor: Principal, member: Membership | None, new_role: str | None
) -> None:
    """Allow or refuse one membership change; raises Forbidden / Unprocessable / NotFound.

    ``member=None`` grants a new membership with ``new_role`` (an invitation);
    ``new_role=None`` removes ``member``. Takes the org's write lock, so the caller's write
    (in the same transaction) cannot race another change of the same org.
    """
    if member is None and new_role is None:
        raise ValueError("check_role_change needs a member or a new role")
    if new_role is not None and new_role not in ROLE_RANK:
        raise Unprocessable(f"Unknown role '{new_role}'.")
    lock_org(db, actor.org_id)
    old_role: str | None = None
    if member is not None:
        if member.org_id != actor.org_id:
            raise NotFound("Member not found.")
        # Re-read under the lock: a concurrent request may have changed or removed it.
        current = db.scalars(
            select(Membership).where(Membership.id == member.id)
            .execution_options(populate_existing=True)
        ).first()
        if current is None:
            raise NotFound("Member not found.")
        old_role = current.role
    actor_role = _current_role(db, actor)
    if actor_role is None or ROLE_RANK[actor_role] < ROLE_RANK["admin"]:
        raise Forbidden("Managing members needs the 'admin' role or higher.")
    # Scopes as of now too: the principal was resolved before the lock.
    scopes = (key_grant(actor.api_key.scopes, actor_role) if actor.api_key is not None
              else frozenset(ROLE_SCOPES[actor_role])) & actor.scopes
    if "admin" not in scopes:
        raise Forbidden("Managing members needs the 'admin' scope.")

    touches_owner = "owner" in (old_role, new_role)
    if touches_owner and actor.type == "api_key":
        raise Forbidden("API keys cannot grant, change or remove the owner role; "
                        "an owner must do this signed in.")
    if touches_owner and actor_role != "owner":
        raise Forbidden("Only an owner can grant, change or remove the owner role.")
    if new_role is not None:
        if ROLE_RANK[new_role] > ROLE_RANK[actor_role]:
            raise Forbidden(f"You cannot grant the '{new_role}' role: it is above your own.")
        missing = set(ROLE_SCOPES[new_role]) - scopes
        if missing:
            raise Forbidden(f"You cannot grant the '{new_role}' role: it holds scopes you "
                            f"lack ({', '.join(sorted(missing))}).")
    if old_role == "owner" and new_role != "owner" and _owner_count(db, actor.org_id) <= 1:
        raise Unprocessable("An organization must keep at least one owner.")


def revoke_keys_of(db: Session, org_id: str, user_id: str) -> int:
    """Revoke, in the caller's transaction, every live key a member made in this org."""
    result = db.execute(
        update(ApiKey)
        .where(ApiKey.org_id == org_id, ApiKey.created_by_user_id == user_id,
               ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def check_see_members(principal: Principal) -> None:
    """Members' emails: any signed-in member of the org sees them; a key needs 'admin'."""
    if principal.type == "api_key" and "admin" not in principal.scopes:
        raise Forbidden("Listing members needs the 'admin' scope on an API key.")
