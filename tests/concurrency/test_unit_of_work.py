"""Commit, then answer: a 2xx means the change is stored, and a failed commit is the answer.

The request's session is the function-scoped ``DB`` dependency: it commits when the endpoint
returns, before the response is sent. These tests hold every route to that (by walking the
dependency trees), and attack it on a real server: a create followed at once by a read must
find the row, and a commit that the database refuses must come back as a problem, not a 2xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant

from app.core.deps import get_db
from tests.concurrency.live import Live, live_server, sqlite_url
from tests.conftest import REDIS_URL
from tests.route_walk import served_routes

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def _wrong_db_uses(app: FastAPI) -> tuple[int, list[str]]:
    """(routes that reach get_db, places that reach it other than through ``DB``)."""
    reaching = 0
    wrong: list[str] = []

    def walk(dep: Dependant, route: str, trail: str) -> bool:
        found = False
        for sub in dep.dependencies:
            name = getattr(sub.call, "__name__", repr(sub.call))
            if sub.call is get_db:
                found = True
                if sub.scope != "function":
                    wrong.append(f"{route}: {trail} -> get_db (scope={sub.scope!r})")
            found = walk(sub, route, f"{trail} -> {name}") or found
        return found

    for label, ctx in served_routes(app):
        reaching += walk(ctx.dependant, label, getattr(ctx.endpoint, "__name__", "?"))
    return reaching, wrong


def test_every_route_gets_its_session_through_the_function_scoped_db() -> None:
    from app.main import create_app

    reaching, wrong = _wrong_db_uses(create_app())
    assert reaching > 40, "the walk found too few routes using the database: is it broken?"
    assert not wrong, "request-scoped sessions commit after the answer:\n" + "\n".join(wrong)


def test_the_walk_catches_a_request_scoped_session() -> None:
    # The check above must be able to fail: a route with a plain Depends(get_db) is caught.
    app = FastAPI()

    def helper(db: object = Depends(get_db)) -> object:  # noqa: B008
        return db

    @app.get("/x")
    def x(_: object = Depends(helper)) -> None:  # noqa: B008
        return None

    assert _wrong_db_uses(app)[1] == ["['GET'] /x: x -> helper -> get_db (scope=None)"]


def test_no_module_depends_on_get_db_directly() -> None:
    pattern = re.compile(r"Depends\(\s*get_db\b")
    offenders = []
    for path in APP_DIR.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line) and line.strip() != 'DB = Depends(get_db, scope="function")':
                offenders.append(f"{path.relative_to(APP_DIR.parent)}:{n}: {line.strip()}")
    assert not offenders, "use `db: Session = DB` (app.core.deps):\n" + "\n".join(offenders)


# --- against a real server ----------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path, make_pg_database) -> Iterator[Live]:
    if request.param == "sqlite":
        with live_server(tmp_path, sqlite_url(tmp_path)) as srv:
            yield srv
    else:
        redis = REDIS_URL.rsplit("/", 1)[0] + "/9"
        with live_server(tmp_path, make_pg_database(), redis) as srv:
            yield srv


def test_a_created_dataset_is_there_on_the_very_next_request(live: Live) -> None:
    org = live.org()
    with httpx.Client(base_url=live.base, headers=org.auth(), timeout=30) as c:
        for i in range(60):
            r = c.post("/v1/datasets", json={"name": f"ds {i}"})
            assert r.status_code == 201, r.text
            found = c.get(f"/v1/datasets/{r.json()['id']}")
            assert found.status_code == 200, f"create #{i} answered 201, then {found.text}"
        # And a write right after the create sees it too.
        r = c.post("/v1/datasets", json={"name": "then rename"})
        renamed = c.patch(f"/v1/datasets/{r.json()['id']}", json={"name": "renamed"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"


# A constraint the database checks only at COMMIT: the endpoint has returned by then. The
# names pick the failure: a conflict (SQLSTATE 23505, bad data -> 409) or a fault (-> 500).
_DEFERRED = """
CREATE FUNCTION atelier_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.name = 'refused at commit' THEN
    RAISE unique_violation USING MESSAGE = 'secret-detail: duplicate at commit';
  ELSIF NEW.name = 'fault at commit' THEN
    RAISE EXCEPTION 'secret-detail: fault at commit';
  END IF;
  RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER atelier_test_refuse AFTER INSERT OR UPDATE ON datasets
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION atelier_test_refuse();
"""


@pytest.fixture()
def pg_live(tmp_path: Path, make_pg_database) -> Iterator[Live]:
    with live_server(tmp_path, make_pg_database(), REDIS_URL.rsplit("/", 1)[0] + "/9") as srv:
        yield srv


def test_a_commit_the_database_refuses_is_answered_as_a_problem(pg_live: Live) -> None:
    live = pg_live
    with live.engine.begin() as conn:
        conn.exec_driver_sql(_DEFERRED)
    org = live.org()
    with httpx.Client(base_url=live.base, headers=org.auth(), timeout=30) as c:
        conflict = c.post("/v1/datasets", json={"name": "refused at commit"})
        assert conflict.status_code == 409, conflict.text
        fault = c.post("/v1/datasets", json={"name": "fault at commit"})
        assert fault.status_code == 500, fault.text
        for r in (conflict, fault):
            assert r.headers["content-type"] == "application/problem+json"
            assert "secret-detail" not in r.text  # a message, never the database's words
        kept = c.post("/v1/datasets", json={"name": "kept"}).json()
        rename = c.patch(f"/v1/datasets/{kept['id']}", json={"name": "refused at commit"})
        assert rename.status_code == 409, rename.text
        names = sorted(d["name"] for d in c.get("/v1/datasets").json()["items"])
        assert names == ["kept"], "a refused commit left a row behind"


# --- timeouts and bookkeeping (PostgreSQL, in process) ------------------------------------------

def test_api_transactions_carry_timeouts_and_the_workers_do_not(
        service_env: dict[str, str]) -> None:
    from sqlalchemy import text

    from app.core.db import session_scope

    def shown(api: bool) -> tuple[str, str]:
        with session_scope(api=api) as db:
            row = db.execute(text("SELECT current_setting('statement_timeout'), "
                                  "current_setting('idle_in_transaction_session_timeout')")).one()
            return str(row[0]), str(row[1])

    assert shown(api=True) == ("30s", "1min")
    assert shown(api=False) == ("0", "0")  # the worker's and the CLI's long operations
    assert shown(api=True) == ("30s", "1min")  # the API pool's own connections


def _last_used(key_id: str) -> object:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import ApiKey

    with session_scope() as db:
        return db.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


def test_last_used_bookkeeping_skips_a_locked_row_instead_of_waiting(
        service_env: dict[str, str]) -> None:
    import time

    from sqlalchemy import select

    from app.core import bookkeeping
    from app.core.db import get_sessionmaker
    from app.models import ApiKey
    from tests.conftest import make_tenant

    tenant = make_tenant()
    holder = get_sessionmaker()()
    try:  # another transaction holds the key's row (as a long request once did)
        holder.execute(select(ApiKey).where(ApiKey.id == tenant.api_key_id).with_for_update())
        bookkeeping.note_key_used(tenant.api_key_id)
        started = time.monotonic()
        assert bookkeeping.flush() == 0
        assert time.monotonic() - started < 1
    finally:
        holder.rollback()
        holder.close()
    assert _last_used(tenant.api_key_id) is None
    bookkeeping.note_key_used(tenant.api_key_id)
    assert bookkeeping.flush() == 1
    assert _last_used(tenant.api_key_id) is not None
    # Throttled: a second use within the minute writes nothing.
    bookkeeping.note_key_used(tenant.api_key_id)
    assert bookkeeping.flush() == 0
    # Its non-waiting settings were its transaction's only, not its pooled connections' (both).
    engine = bookkeeping.engine()
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql(
                "SELECT current_setting('lock_timeout'), current_setting('synchronous_commit')",
            ).one() == ("0", "on")


def test_last_used_bookkeeping_keeps_its_notes_when_its_pool_is_busy(
        service_env: dict[str, str]) -> None:
    # A flush that finds both bookkeeping connections in use must not wait for one, and must
    # not drop what it was to write either: the next flush writes it.
    from app.core import bookkeeping
    from tests.conftest import make_tenant

    tenants = [make_tenant(), make_tenant()]
    for tenant in tenants:
        bookkeeping.note_key_used(tenant.api_key_id)
    engine = bookkeeping.engine()
    assert engine.pool.timeout() == 0  # type: ignore[attr-defined]
    held = [engine.connect() for _ in range(bookkeeping.POOL_SIZE)]
    try:
        assert bookkeeping.flush() == 0
    finally:
        for conn in held:
            conn.close()
    assert bookkeeping.flush() == 2  # nothing noted since: these are the kept notes
    assert all(_last_used(t.api_key_id) is not None for t in tenants)


def test_a_request_only_notes_its_key_and_the_api_writes_it_off_the_request(
        service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The request path does no bookkeeping I/O; the API's thread writes within FLUSH_EVERY_S,
    # and its shutdown writes what is left.
    import time

    from fastapi.testclient import TestClient

    from app.core import bookkeeping
    from app.main import create_app
    from tests.conftest import make_tenant

    first, second = make_tenant(), make_tenant()
    monkeypatch.setattr(bookkeeping, "FLUSH_EVERY_S", 0.2)
    with TestClient(create_app()) as client:
        assert client.get("/v1/jobs", headers=first.auth).status_code == 200
        deadline = time.monotonic() + 5
        while _last_used(first.api_key_id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _last_used(first.api_key_id) is not None  # the thread wrote it
        monkeypatch.setattr(bookkeeping, "FLUSH_EVERY_S", 3600.0)
        bookkeeping.stop()  # a thread that now waits an hour: only the shutdown can write
        bookkeeping.start()
        assert client.get("/v1/jobs", headers=second.auth).status_code == 200
        time.sleep(0.3)
        assert _last_used(second.api_key_id) is None  # the request itself wrote nothing
    assert _last_used(second.api_key_id) is not None  # written at shutdown
