"""Org scoping in one place: every tenant query is built here from the principal.

Another org's object is reported as missing (404), never as forbidden, so its existence
does not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.ids import is_valid_id
from app.identity.principal import Principal

M = TypeVar("M")


def scoped(model: type[M], principal: Principal) -> Select[tuple[M]]:
    return select(model).where(model.org_id == principal.org_id)  # type: ignore[attr-defined]


@cache
def org_rows(model: type[Any], without: tuple[str, ...] = ()) -> Select[Any]:
    """Every column of ``model`` but those named in ``without``, as plain rows of one org: bind
    ``org_id`` (``paginate(..., rows=True, bind=...)``). For list pages: building and tracking
    an ORM object per row was a large share of their time. Built once per model."""
    columns = [getattr(model, attr.key) for attr in model.__mapper__.column_attrs
               if attr.key not in without]
    return select(*columns).where(model.org_id == bindparam("org_id"))


def get_scoped(
    db: Session, model: type[M], object_id: str, principal: Principal, *, what: str | None = None,
    for_update: bool = False, **filters: Any,
) -> M:
    if not is_valid_id(object_id):  # never let a malformed id reach the database
        raise NotFound(f"{what or model.__name__} '{object_id[:40]}' not found.")
    stmt = _by_id(model, for_update, tuple(sorted(filters)))
    obj = db.scalar(stmt, {"org_id": principal.org_id, "object_id": object_id, **filters})
    if obj is None:
        raise NotFound(f"{what or model.__name__} '{object_id}' not found.")
    return obj


@lru_cache(maxsize=256)
def _by_id(model: type[M], for_update: bool, filters: tuple[str, ...]) -> Select[tuple[M]]:
    """Built once per shape, with the org, the id and the filters as parameters: this runs on
    nearly every request, and building a statement (and its cache key) per call was a large
    share of a small query's cost (the API-key lookup went from 1.8 to 0.8 ms this way)."""
    stmt = select(model).where(model.org_id == bindparam("org_id"),  # type: ignore[attr-defined]
                               model.id == bindparam("object_id"))  # type: ignore[attr-defined]
    for name in filters:
        stmt = stmt.where(getattr(model, name) == bindparam(name))
    return stmt.with_for_update() if for_update else stmt


def path_object(model: type[M], param: str, *, what: str, scope: str) -> Callable[..., M]:
    """A dependency that loads ``model`` by the path parameter ``param`` within the caller's org.

    Being a dependency, it runs before the request body is validated, so another org's object
    is a 404 whatever the body says. It also enforces ``scope``.
    """
    from app.core.deps import DB
    from app.identity.principal import require

    def dependency(
        request: Request, db: Session = DB,
        principal: Principal = Depends(require(scope)),
    ) -> M:
        return get_scoped(db, model, request.path_params[param], principal, what=what)

    dependency.__name__ = f"load_{model.__name__.lower()}"
    return dependency
