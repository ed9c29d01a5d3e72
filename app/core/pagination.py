"""The one cursor-pagination helper every list endpoint uses.

Ids are time-sortable (see ``app.core.ids``), so the cursor is simply the last id returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.core.errors import Unprocessable
from app.core.ids import is_valid_id

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageParams:
    def __init__(
        self,
        limit: int = Query(50, ge=1, le=MAX_LIMIT, description="Page size (max 200)."),
        cursor: str | None = Query(None, description="`next_cursor` of the previous page.",
                                   pattern="^[A-Za-z0-9]{28}$"),
        order: Literal["desc", "asc"] = Query("desc", description="Newest first by default."),
    ) -> None:
        if cursor is not None and not is_valid_id(cursor):
            raise Unprocessable("Invalid cursor.", errors=[{"loc": ["query", "cursor"],
                                                             "msg": "invalid cursor"}])
        self.limit, self.cursor, self.order = limit, cursor, order


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: Any,
    params: PageParams,
    render: Callable[[Any], T],
) -> dict[str, Any]:
    if params.cursor:
        stmt = stmt.where(id_column < params.cursor if params.order == "desc"
                          else id_column > params.cursor)
    stmt = stmt.order_by(id_column.desc() if params.order == "desc" else id_column.asc())
    rows: Sequence[Any] = session.scalars(stmt.limit(params.limit + 1)).all()
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    return {
        "items": [render(r) for r in rows],
        "next_cursor": rows[-1].id if more and rows else None,
    }
