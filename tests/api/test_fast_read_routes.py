"""The busiest read routes take shortcuts for speed (bench/api_load.py); none may change what
they answer or let a write slip through.

- ``plain_json`` answers must be byte for byte what the route's
  ``response_model`` writes for the same data, for jobs in every state.
- ``reads_only`` routes run without a transaction on PostgreSQL; a write through one fails.
- No route reaches the storage through a plain-function dependency (one thread-pool trip each).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.db import WriteInReadOnlySession
from app.core.deps import DB, is_reads_only, reads_only
from app.storage.factory import get_storage
from tests.conftest import Tenant
from tests.library.helpers import make_job
from tests.route_walk import served_routes


def _jobs_in_every_state(tenant: Tenant) -> list[str]:
    from app.core.db import session_scope
    from app.models import TrainingJob

    now = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)
    states: list[dict[str, Any]] = [
        {"status": "queued"},
        {"status": "running", "phase": "training", "progress_step": 3, "total_steps": 8,
         "loss": 0.125, "images_per_second": 2.5, "started_at": now, "gpu_seconds": 7.333,
         "config": {"train_batch_size": 2, "validate_every_n_steps": 4,
                    "validation_prompts": ["p"], "nested": {"a": [1, 2.5, None]}},
         "validation_seconds": 1.5},
        {"status": "running", "phase": "caching_latents", "phase_done": 2, "phase_total": 9,
         "started_at": now.replace(microsecond=0)},
        {"status": "failed", "error": "Out of memory: try a smaller batch.", "attempts": 2,
         "started_at": now, "finished_at": now + timedelta(seconds=90), "loss": 1e-7},
        {"status": "succeeded", "progress_step": 8, "total_steps": 8, "started_at": now,
         "finished_at": now + timedelta(hours=1), "gpu_seconds": 3600.0},
    ]
    ids = []
    with session_scope() as db:
        for i, state in enumerate(states):
            job = TrainingJob(org_id=tenant.org_id, name=f"job {i} ü", type="lora",
                              architecture="sd15", base_model="tiny",
                              config=state.pop("config", {"rank": 4}),
                              dataset_snapshot=[{"key": "k", "caption": "c"}] * i, **state)
            db.add(job)
            db.flush()
            ids.append(job.id)
        retry = TrainingJob(org_id=tenant.org_id, name="retry", type="textual_inversion",
                            architecture="sdxl", base_model="tiny", config={}, template=None,
                            dataset_snapshot=[], status="cancelled", retry_of_id=ids[3])
        db.add(retry)
    return ids


def _schema_of(client: TestClient, path: str) -> Any:
    for _, ctx in served_routes(client.app):  # type: ignore[arg-type]
        if ctx.path == path and "GET" in (ctx.methods or ()):
            return ctx.original_route.response_model
    raise AssertionError(f"no GET {path}")


@pytest.mark.parametrize("query", ["", "?limit=2", "?status=running", "?order=asc"])
def test_job_pages_are_what_their_schema_writes(client: TestClient, tenant: Tenant,
                                                query: str) -> None:
    _jobs_in_every_state(tenant)
    body = client.get(f"/v1/jobs{query}", headers=tenant.auth)
    assert body.status_code == 200 and body.headers["content-type"] == "application/json"
    adapter = TypeAdapter(_schema_of(client, "/v1/jobs"))
    assert body.content == adapter.dump_json(adapter.validate_json(body.content))
    items = body.json()["items"]
    assert items, "the page must hold jobs for the comparison to mean anything"
    if not query:
        assert {j["status"] for j in items} == {"queued", "running", "failed", "succeeded",
                                                "cancelled"}
        running = next(j for j in items if j["progress"]["phase"] == "training")
        assert running["progress"]["eta_seconds"] is not None
        assert running["created_at"].endswith("Z") and running["item_count"] == 1


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("status", [None, "running"])
def test_job_pages_walk_every_job_once_in_order(client: TestClient, tenant: Tenant,
                                                order: str, status: str | None) -> None:
    """The page statements are built once with the cursor and limit as parameters: walking
    with a small limit must still give every job once, in order, with the filter applied."""
    from app.core.pagination import _PAGED

    ids = _jobs_in_every_state(tenant)
    listed = client.get(f"/v1/jobs?limit=200&order={order}", headers=tenant.auth).json()
    expected = [j["id"] for j in listed["items"] if status in (None, j["status"])]
    assert len(expected) == (2 if status else len(ids) + 1)
    assert expected == sorted(expected, reverse=order == "desc")
    seen, cursor, built = [], "", len(_PAGED)
    while True:
        query = f"limit=1&order={order}" + (f"&status={status}" if status else "") + cursor
        page = client.get(f"/v1/jobs?{query}", headers=tenant.auth).json()
        seen += [j["id"] for j in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == expected
    assert len(_PAGED) <= built + 2, "a page statement was rebuilt per request"


def test_other_fast_routes_are_what_their_schemas_write(client: TestClient,
                                                        tenant: Tenant) -> None:
    from app.core.db import session_scope
    from app.models import Dataset, Model

    fx = make_job(get_storage(), tenant.org_id, steps=[2, 4])
    with session_scope() as db:
        db.add(Dataset(org_id=tenant.org_id, name="ds", description="d"))
        db.add(Model(org_id=tenant.org_id, name="m", type="lora", architecture="sd15",
                     base_model="tiny", step=2, job_id=fx.job_id, trigger="sks",
                     files=[{"name": "m.safetensors", "key": "k/m.safetensors", "bytes": 5}],
                     preview_images=[{"key": "k/p.webp", "prompt": "p", "prompt_index": 0,
                                      "index": 0, "seed": 3}], bytes=5))
    for url, path in [("/v1/datasets", "/v1/datasets"), ("/v1/models", "/v1/models"),
                      (f"/v1/jobs/{fx.job_id}/checkpoints", "/v1/jobs/{job_id}/checkpoints")]:
        body = client.get(url, headers=tenant.auth)
        assert body.status_code == 200, body.text
        adapter = TypeAdapter(_schema_of(client, path))
        assert body.content == adapter.dump_json(adapter.validate_json(body.content)), url
        assert body.json(), url


# --- reads_only -------------------------------------------------------------------------------

def _app_with_reads_only_routes() -> FastAPI:
    from app.core.errors import install_error_handlers
    from app.models import Organization

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/in-transaction")
    @reads_only
    def in_transaction(db: Session = DB) -> dict[str, Any]:
        db.execute(text("SELECT 1"))
        dbapi = db.connection().connection.dbapi_connection
        return {"autocommit": bool(getattr(dbapi, "autocommit", False))}

    @app.get("/writes")
    @reads_only
    def writes(db: Session = DB) -> None:
        db.add(Organization(name="never stored", slug="never-stored"))
        db.flush()

    @app.get("/updates")
    @reads_only
    def updates(db: Session = DB) -> None:
        from sqlalchemy import update

        db.execute(update(Organization).values(name="x").where(Organization.slug == "none"))

    @app.get("/locks")
    @reads_only
    def locks(db: Session = DB) -> None:
        from sqlalchemy import select

        db.execute(select(Organization).with_for_update())

    return app


def test_a_reads_only_route_runs_in_autocommit_on_postgresql(service_env: dict[str, str]) -> None:
    assert service_env["ATELIER_DATABASE_URL"].startswith("postgresql")
    with TestClient(_app_with_reads_only_routes()) as c:
        assert c.get("/in-transaction").json() == {"autocommit": True}


@pytest.mark.parametrize("route", ["/writes", "/updates", "/locks"])
def test_a_write_through_a_reads_only_route_fails(service_env: dict[str, str],
                                                 route: str) -> None:
    from app.core.db import session_scope
    from app.models import Organization

    with TestClient(_app_with_reads_only_routes()) as c, \
            pytest.raises(WriteInReadOnlySession):
        c.get(route)
    with session_scope() as db:
        assert db.query(Organization).filter_by(slug="never-stored").count() == 0


def test_the_same_route_without_the_mark_keeps_its_transaction(
        service_env: dict[str, str]) -> None:
    app = FastAPI()

    @app.get("/plain")
    def plain(db: Session = DB) -> dict[str, Any]:
        db.execute(text("SELECT 1"))
        return {"autocommit": bool(db.connection().connection.dbapi_connection.autocommit)}

    with TestClient(app) as c:
        assert c.get("/plain").json() == {"autocommit": False}


def test_the_busiest_read_routes_are_marked_reads_only() -> None:
    from app.main import create_app

    marked = {label for label, ctx in served_routes(create_app()) if is_reads_only(ctx.endpoint)}
    assert {"['GET'] /v1/jobs", "['GET'] /v1/datasets", "['GET'] /v1/models",
            "['GET'] /v1/jobs/{job_id}/checkpoints"} <= marked


# --- storage without a thread-pool trip -------------------------------------------------------

def test_no_route_takes_its_storage_from_a_plain_function() -> None:
    from app.main import create_app

    offenders = []

    def walk(dep: Any, label: str) -> None:
        for sub in dep.dependencies:
            if sub.call is get_storage:
                offenders.append(label)
            walk(sub, label)

    routes = list(served_routes(create_app()))
    for label, ctx in routes:
        walk(ctx.dependant, label)
    assert len(routes) > 40 and not offenders, offenders
