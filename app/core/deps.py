"""Request-scoped dependencies: one transaction per request, committed at the end."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.core.db import session_scope


def get_db() -> Iterator[Session]:
    with session_scope() as session:
        yield session
