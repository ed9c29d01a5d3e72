"""Org scoping in one place: every tenant query is built here from the principal.

Another org's object is reported as missing (404), never as forbidden, so its existence
does not leak.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.identity.principal import Principal

M = TypeVar("M")


def scoped(model: type[M], principal: Principal) -> Select[tuple[M]]:
    return select(model).where(model.org_id == principal.org_id)  # type: ignore[attr-defined]


def get_scoped(
    db: Session, model: type[M], object_id: str, principal: Principal, *, what: str | None = None,
    for_update: bool = False, **filters: Any,
) -> M:
    stmt = scoped(model, principal).where(model.id == object_id)  # type: ignore[attr-defined]
    for name, value in filters.items():
        stmt = stmt.where(getattr(model, name) == value)
    if for_update:
        stmt = stmt.with_for_update()
    obj = db.scalar(stmt)
    if obj is None:
        raise NotFound(f"{what or model.__name__} '{object_id}' not found.")
    return obj
