"""``Idempotency-Key`` support: the first response to a key is stored and replayed on repeats.

Usage in a route (one transaction per request, see ``app.core.deps``)::

    idem = idempotency.begin(db, principal.org_id, f"POST /v1/jobs", key, body.model_dump())
    if idem.replay is not None:
        return idem.replay
    ...create things...
    idem.save(201, out.model_dump(mode="json"))

``begin`` claims the key by inserting its record *before* the work starts. A concurrent request
with the same key then blocks on the unique index until the first transaction ends: if it
committed, the second one replays its response; if it rolled back, the second one does the work.
A failed request therefore stores nothing and the client may retry with the same key.

Call ``begin`` before the request changes anything: on a same-key race it rolls back the
session's transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Unprocessable
from app.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200


def idempotency_key(
    key: str | None = Header(
        None, alias=HEADER, min_length=1, max_length=MAX_KEY_LENGTH,
        description="Repeat a request safely: a repeat with the same key returns the first "
        "response and creates nothing new.",
    ),
) -> str | None:
    """FastAPI dependency reading the optional ``Idempotency-Key`` header."""
    return key


def request_hash(payload: Any) -> str:
    """A stable hash of the request body, so a key reused for a different request is caught."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Idempotency:
    """The outcome of ``begin``: either a response to replay or a claim to complete."""

    record: IdempotencyRecord | None = None
    replay: JSONResponse | None = None

    def save(self, status_code: int, response: Any) -> None:
        """Store the response of the claimed key (no-op without a key)."""
        if self.record is not None:
            self.record.status_code = status_code
            self.record.response = response


def _find(db: Session, org_id: str, endpoint: str, key: str) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.org_id == org_id,
        IdempotencyRecord.endpoint == endpoint,
        IdempotencyRecord.key == key,
    )
    # populate_existing: a record seen earlier in this session may have been updated since.
    return db.scalar(stmt.execution_options(populate_existing=True))


def _replay(record: IdempotencyRecord, digest: str) -> JSONResponse:
    if record.request_hash != digest:
        raise Unprocessable(
            f"This {HEADER} was already used with a different request.",
            errors=[{"loc": ["header", HEADER], "msg": "key reused with a different request"}],
        )
    return JSONResponse(
        record.response, status_code=record.status_code, headers={REPLAY_HEADER: "true"}
    )


def begin(
    db: Session, org_id: str, endpoint: str, key: str | None, payload: Any
) -> Idempotency:
    """Replay the stored response for ``key`` or claim the key for this request.

    ``endpoint`` names what the key is for (e.g. ``"POST /v1/jobs/<id>/finalize"``); ``payload``
    is the JSON-able request body. A key reused with a different payload is a 422.
    """
    if key is None:
        return Idempotency()
    digest = request_hash(payload)
    existing = _find(db, org_id, endpoint, key)
    if existing is not None:
        return Idempotency(replay=_replay(existing, digest))
    record = IdempotencyRecord(
        org_id=org_id, endpoint=endpoint, key=key, request_hash=digest, status_code=0,
        response={},
    )
    db.add(record)
    try:
        db.flush()  # blocks here while another transaction holds the same key
    except IntegrityError:
        # Another request with this key committed first: answer what it answered. A full
        # rollback rather than a savepoint, because SQLite (pysqlite) savepoints are not
        # reliable; hence ``begin`` must come before the request changes anything.
        db.rollback()
        winner = _find(db, org_id, endpoint, key)
        if winner is None:  # pragma: no cover - the conflicting row vanished (org deleted)
            raise
        return Idempotency(replay=_replay(winner, digest))
    return Idempotency(record=record)
