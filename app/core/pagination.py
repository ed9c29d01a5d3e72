"""The one cursor-pagination helper every list endpoint uses.

Ids are time-sortable (see ``app.core.ids``), so the cursor is simply the last id returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, bindparam
from sqlalchemy.orm import Session

from app.core.errors import Unprocessable
from app.core.ids import is_valid_id

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageParams:
    limit: int = 50
    cursor: str | None = None
    order: Literal["desc", "asc"] = "desc"


async def page_params(
    limit: int = Query(50, ge=1, le=MAX_LIMIT, description="Page size (max 200)."),
    cursor: str | None = Query(None, description="`next_cursor` of the previous page.",
                               pattern="^[A-Za-z0-9]{28}$"),
    order: Literal["desc", "asc"] = Query("desc", description="Newest first by default."),
) -> PageParams:
    # async: FastAPI would run a plain function (or class) dependency on the thread pool.
    if cursor is not None and not is_valid_id(cursor):
        raise Unprocessable("Invalid cursor.", errors=[{"loc": ["query", "cursor"],
                                                         "msg": "invalid cursor"}])
    return PageParams(limit, cursor, order)


# Every list route takes its page as `page: PageParams = PAGE`.
PAGE = Depends(page_params)


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: Any,
    params: PageParams,
    render: Callable[[Any], T],
    *,
    rows: bool = False,
    bind: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A page of ``stmt`` (with bound values ``bind``) by ``id_column``; ``rows=True`` for a
    statement of columns (plain rows) rather than of one entity."""
    paged = _paged(stmt, id_column, params.cursor is not None, params.order)
    values = {**(bind or {}), "page_limit": params.limit + 1, "page_cursor": params.cursor}
    # Plain rows need none of the ORM's result machinery: run on the session's connection.
    found: Sequence[Any] = (session.connection().execute(paged, values).all() if rows
                            else session.scalars(paged, values).all())
    more = len(found) > params.limit
    found = found[: params.limit]
    return {
        "items": [render(r) for r in found],
        "next_cursor": found[-1].id if more and found else None,
    }


_PAGED: dict[tuple[int, int, bool, str], tuple[Select[Any], Any, Select[Any]]] = {}


def _paged(stmt: Select[Any], id_column: Any, with_cursor: bool, order: str) -> Select[Any]:
    """``stmt`` with the cursor, order and limit as parameters, built once per shape: building
    a statement per request also rebuilds its cache key, a walk of every column it selects.
    Keyed by identity (SQL expressions overload ``==``); the entry keeps ``stmt`` alive so its
    id cannot be reused while cached. Statements built per request just pass through."""
    key = (id(stmt), id(id_column), with_cursor, order)
    hit = _PAGED.get(key)
    if hit is not None and hit[0] is stmt and hit[1] is id_column:
        return hit[2]
    paged = stmt
    if with_cursor:
        cursor = bindparam("page_cursor")
        paged = paged.where(id_column < cursor if order == "desc" else id_column > cursor)
    paged = paged.order_by(id_column.desc() if order == "desc" else id_column.asc())
    paged = paged.limit(bindparam("page_limit"))
    if len(_PAGED) >= 256:  # per-request statements (search filters) must not pile up
        _PAGED.clear()
    _PAGED[key] = (stmt, id_column, paged)
    return paged
