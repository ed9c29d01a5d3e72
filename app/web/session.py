"""Who is looking at a page: the signed-in user's shell context (org, orgs, role, scopes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.orm import Session

from app.core.errors import AppError
from app.identity import service
from app.identity.principal import Principal, principal_of


@dataclass(frozen=True)
class OrgView:
    id: str
    name: str
    slug: str
    plan: str


@dataclass(frozen=True)
class Viewer:
    """What templates need to draw the shell and hide what the user cannot do."""

    name: str
    email: str
    role: str
    org: OrgView
    orgs: list[OrgView] = field(default_factory=list)
    scopes: frozenset[str] = frozenset()

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.replace("@", " ").replace(".", " ").split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"


def _org(o: object) -> OrgView:
    return OrgView(id=o.id, name=o.name, slug=o.slug, plan=o.plan)  # type: ignore[attr-defined]


def current_viewer(request: Request, db: Session) -> Viewer | None:
    """The signed-in dashboard user, or None (no session, an expired one, or an API key)."""
    try:
        principal: Principal = principal_of(request, db)
    except AppError:
        return None
    if principal.user is None:
        return None
    user = principal.user
    orgs = [_org(m.organization) for m in service.memberships_of(db, user)]
    return Viewer(
        name=user.name or user.email, email=user.email, role=principal.role or "viewer",
        org=_org(principal.organization), orgs=orgs, scopes=frozenset(principal.scopes),
    )
