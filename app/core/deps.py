"""Request-scoped dependencies: one transaction per request, committed at the end."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.core.db import get_sessionmaker


def get_db() -> Iterator[Session]:
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
