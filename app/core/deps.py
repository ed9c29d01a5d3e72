"""Request-scoped dependencies: one unit of work per request, committed before the answer."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends
from sqlalchemy.orm import Session

from app.core.db import session_scope


def get_db() -> Iterator[Session]:
    with session_scope(api=True) as session:
        yield session


# Function scope: the session commits and closes when the endpoint function returns, before
# the response is sent. A failed commit therefore becomes an error answer (never a 2xx for a
# write that was lost), and no session or transaction outlives the handler (streams, waits).
# Every route takes its session as `db: Session = DB`; a test checks that none uses another way.
DB = Depends(get_db, scope="function")
