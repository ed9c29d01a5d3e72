"""An API process warms up before it takes traffic (app.core.warmup): its pool's connections
are open and the busiest routes' queries compiled, so the first requests under load pay for
neither; a warm-up that fails costs only itself."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import bookkeeping, warmup
from app.core.db import get_api_engine, reset_db_caches
from app.core.ids import new_id
from app.core.settings import get_settings
from app.main import create_app
from app.storage.factory import get_storage
from tests.conftest import Tenant
from tests.library.helpers import make_job


@pytest.fixture()
def fresh_engine(service_env: dict[str, str]) -> Iterator[None]:
    """New engines: no connection open, nothing compiled, as in a new process."""
    reset_db_caches()
    bookkeeping.reset()
    yield
    reset_db_caches()
    bookkeeping.reset()


def test_startup_runs_every_step_on_each_pooled_connection(
        fresh_engine: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def record(db: Session) -> None:
        seen.append(id(db.connection().connection.dbapi_connection))

    monkeypatch.setattr(warmup, "_STEPS", [*warmup._STEPS, record])
    size = get_settings().db_pool_size
    with TestClient(create_app()):
        pool = get_api_engine().pool
        assert pool.checkedin() == size and pool.checkedout() == 0  # type: ignore[attr-defined]
        marks = bookkeeping.engine().pool
        assert marks.checkedin() == bookkeeping.POOL_SIZE  # type: ignore[attr-defined]
    assert len(seen) == size and len(set(seen)) == size


def test_the_api_pool_keeps_the_connections_a_burst_opened(fresh_engine: None) -> None:
    # Closing them on return (SQLAlchemy's overflow) made every burst past db_pool_size open
    # new cold connections again, each a backend fork plus its catalog loads, just when the
    # server was busiest. The gate still bounds how many the pool ever holds.
    pool = get_api_engine().pool
    burst = get_settings().db_pool_size + 3

    def backends() -> set[int]:
        held = [pool.connect() for _ in range(burst)]
        try:
            return {c.cursor().execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[union-attr]
                    for c in held}
        finally:
            for c in held:
                c.close()

    first = backends()
    assert pool.checkedin() == burst  # type: ignore[attr-defined]
    assert backends() == first  # the same backends: nothing was reopened


def test_every_registered_step_runs_cleanly(fresh_engine: None,
                                            caplog: pytest.LogCaptureFixture) -> None:
    # A route whose signature changed would break its step; warm_up() would only log it.
    with caplog.at_level(logging.WARNING, logger=warmup.__name__):
        assert warmup.warm_up() == get_settings().db_pool_size
    assert not caplog.records  # what the steps must cover: the test after this one


def test_the_list_routes_compile_nothing_after_the_warm_up(fresh_engine: None,
                                                           tenant: Tenant) -> None:
    with TestClient(create_app()) as client:
        compiled = get_api_engine()._compiled_cache
        assert compiled is not None
        warmed = len(compiled)
        for path in ("/v1/jobs", f"/v1/jobs?cursor={new_id()}", "/v1/datasets", "/v1/models"):
            assert client.get(path, headers=tenant.auth).status_code == 200, path
        job = make_job(get_storage(), tenant.org_id, steps=[])
        assert client.get(f"/v1/jobs/{job.job_id}/checkpoints",
                          headers=tenant.auth).status_code == 200
        assert len(compiled) == warmed


def test_a_failing_warm_up_is_logged_and_the_api_still_starts(
        fresh_engine: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(db: Session) -> None:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(warmup, "_STEPS", [broken])
    with caplog.at_level(logging.WARNING, logger=warmup.__name__), \
            TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200
        assert get_api_engine().pool.checkedout() == 0  # type: ignore[attr-defined]
    assert "warm-up stopped" in caplog.text and "database unreachable" in caplog.text


def test_the_warm_up_can_be_switched_off(fresh_engine: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "api_warm_up", False)
    assert warmup.warm_up() == 0


def test_the_first_request_finds_every_route_built(service_env: dict[str, str], tenant: Tenant,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import fastapi.routing

    with TestClient(create_app()) as client:
        built: list[object] = []
        real = fastapi.routing.get_dependant
        monkeypatch.setattr(fastapi.routing, "get_dependant",
                            lambda *a, **k: built.append(k.get("call")) or real(*a, **k))
        assert client.get("/v1/jobs", headers=tenant.auth).status_code == 200
        assert client.get("/healthz").status_code == 200
    assert built == []
