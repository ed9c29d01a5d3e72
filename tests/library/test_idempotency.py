"""app.core.idempotency on its own: claim, replay, mismatch, and a same-key race."""

from __future__ import annotations

import threading

import pytest

from app.core import idempotency
from app.core.db import get_sessionmaker
from app.core.errors import Unprocessable
from tests.conftest import Tenant


def test_claim_then_replay_then_mismatch(tenant: Tenant) -> None:
    maker = get_sessionmaker()
    with maker() as db:
        assert idempotency.begin(db, tenant.org_id, "POST /x", None, {"a": 1}).record is None
        claim = idempotency.begin(db, tenant.org_id, "POST /x", "k1", {"a": 1, "b": [2]})
        assert claim.replay is None
        claim.save(201, {"id": "first"})
        db.commit()
    with maker() as db:
        again = idempotency.begin(db, tenant.org_id, "POST /x", "k1", {"b": [2], "a": 1})
        assert again.replay is not None and again.replay.status_code == 201
        assert again.replay.body == b'{"id":"first"}'
        with pytest.raises(Unprocessable):
            idempotency.begin(db, tenant.org_id, "POST /x", "k1", {"a": 2})
        # The same key on another endpoint is independent.
        assert idempotency.begin(db, tenant.org_id, "POST /y", "k1", {"a": 2}).replay is None
        db.rollback()


def test_a_concurrent_repeat_waits_for_the_first_and_replays_it(tenant: Tenant) -> None:
    maker = get_sessionmaker()
    first = maker()
    claim = idempotency.begin(first, tenant.org_id, "POST /race", "k", {"n": 1})
    assert claim.replay is None
    outcome: dict[str, object] = {}

    def second() -> None:
        with maker() as db:
            # Blocks on the unique index until the first transaction ends.
            outcome["result"] = idempotency.begin(db, tenant.org_id, "POST /race", "k", {"n": 1})

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second request should wait for the first"
    claim.save(200, {"winner": True})
    first.commit()
    first.close()
    thread.join(10)
    result = outcome["result"]
    assert isinstance(result, idempotency.Idempotency) and result.replay is not None
    assert result.replay.body == b'{"winner":true}'


def test_a_rolled_back_claim_frees_the_key(tenant: Tenant) -> None:
    maker = get_sessionmaker()
    with maker() as db:
        idempotency.begin(db, tenant.org_id, "POST /z", "k", {})
        db.rollback()  # the request failed: nothing stored
    with maker() as db:
        assert idempotency.begin(db, tenant.org_id, "POST /z", "k", {}).replay is None
