"""POST /v1/jobs/{job_id}/finalize: models created, everything else deleted, on both backends."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import session_scope
from app.core.keys import model_prefix
from app.core.usage import storage_bytes
from app.models import AuditEvent, Checkpoint, Model, TrainingJob, ValidationImage
from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import PROMPTS, bytes_under, keys_under, make_job, model_keys

LOCAL = pytest.mark.parametrize("backend", ["local"], indirect=True)


def _finalize(api: TestClient, tenant: Tenant, job_id: str, **body: object) -> dict:
    r = api.post(f"/v1/jobs/{job_id}/finalize", json=body, headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _rows(job_id: str) -> tuple[str, int, int]:
    with session_scope() as db:
        job = db.get(TrainingJob, job_id)
        assert job is not None
        ckpts = db.scalar(select(func.count()).where(Checkpoint.job_id == job_id))
        images = db.scalar(select(func.count()).where(ValidationImage.job_id == job_id))
        return job.status, int(ckpts or 0), int(images or 0)


def test_finalize_keeps_the_chosen_steps_and_empties_the_job_prefix(
    api: TestClient, storage: Storage, tenant: Tenant, cleanups: list[tuple[str, str]]
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[100, 200, 300, 400])
    assert len(keys_under(storage, fx.prefix)) == 4 + 5 * 2 + 1  # ckpts, images, state

    models = _finalize(api, tenant, fx.job_id, steps=[400, 200])["models"]

    assert [m["step"] for m in models] == [400, 200]
    assert keys_under(storage, fx.prefix) == []  # nothing of the job is left in storage
    assert cleanups == [(tenant.org_id, fx.job_id)]
    for m in models:
        data = fx.files[m["step"]]["lora.safetensors"]
        assert model_keys(storage, tenant.org_id, m["id"]) == [
            "lora.safetensors", "previews/p0-0.webp", "previews/p1-0.webp"]
        assert storage.get(model_prefix(tenant.org_id, m["id"]) + "lora.safetensors") == data
        assert m["name"] == f"Portraits · step {m['step']}"
        assert (m["type"], m["architecture"], m["base_model"]) == ("lora", "sd15", "tiny-sd15")
        assert (m["trigger"], m["job_id"]) == ("sks person", fx.job_id)
        assert m["config"]["caption_prefix"] == "sks person"
        assert m["bytes"] == len(data)
        assert m["files"] == [{"name": "lora.safetensors", "bytes": len(data),
                               "download_name": f"portraits-step-{m['step']}.safetensors",
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "url": m["files"][0]["url"]}]
        assert [(p["prompt"], p["prompt_index"], p["index"], p["seed"])
                for p in m["preview_images"]] == [(PROMPTS[0], 0, 0, 1000),
                                                  (PROMPTS[1], 1, 0, 1001)]
    assert _rows(fx.job_id) == ("finalized", 0, 0)
    # The job stays readable.
    r = api.get(f"/v1/jobs/{fx.job_id}", headers=tenant.auth)
    assert r.status_code == 200 and r.json()["status"] == "finalized"
    with session_scope() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.target_id == fx.job_id))
        assert event is not None and event.action == "job.finalized"
        assert sorted(event.details["model_ids"]) == sorted(m["id"] for m in models)


def test_names_trigger_and_types(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    fx = make_job(storage, tenant.org_id, steps=[5, 10], type="pivotal", state_file=False)
    models = _finalize(api, tenant, fx.job_id, steps=[5, 10], names=[" First ", "Second"])["models"]
    assert [m["name"] for m in models] == ["First", "Second"]
    assert {m["trigger"] for m in models} == {"<sks>"}  # the token, not the caption prefix
    assert [f["name"] for f in models[0]["files"]] == ["lora.safetensors", "embedding.safetensors"]


def test_usage_falls_by_exactly_what_was_deleted(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2, 3], state_file=False)
    org_prefix = f"orgs/{tenant.org_id}/"
    with session_scope() as db:
        usage_before = storage_bytes(db, tenant.org_id)
    stored_before = bytes_under(storage, org_prefix)
    assert usage_before == stored_before  # every object is accounted for by a row

    _finalize(api, tenant, fx.job_id, steps=[2])

    with session_scope() as db:
        usage_after = storage_bytes(db, tenant.org_id)
        model_bytes = db.scalar(select(func.sum(Model.bytes)).where(
            Model.org_id == tenant.org_id))
    stored_after = bytes_under(storage, org_prefix)
    assert usage_before - usage_after == stored_before - stored_after > 0
    assert usage_after == stored_after == model_bytes


@LOCAL
def test_body_errors_are_422(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2], state_file=False)
    url = f"/v1/jobs/{fx.job_id}/finalize"
    for body, needle in [
        ({"steps": []}, "at least 1"),
        ({"steps": [1, 1]}, "duplicate steps: [1]"),
        ({"steps": [1, 2], "names": ["only one"]}, "one name per step"),
        ({"steps": [1], "names": ["  "]}, "blank"),
        ({}, "steps"),
    ]:
        r = api.post(url, json=body, headers=tenant.auth)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert needle in r.text, (body, r.text)
    assert _rows(fx.job_id) == ("succeeded", 2, 6)  # nothing happened


@LOCAL
def test_state_and_step_errors_are_409(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    running = make_job(storage, tenant.org_id, steps=[1], status="running")
    r = api.post(f"/v1/jobs/{running.job_id}/finalize", json={"steps": [1]}, headers=tenant.auth)
    assert r.status_code == 409 and "is running" in r.json()["detail"]
    assert r.json()["job_status"] == "running"

    fx = make_job(storage, tenant.org_id, steps=[10, 20])
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [10, 15]}, headers=tenant.auth)
    assert r.status_code == 409
    assert "no checkpoint at step 15; available steps: 10, 20" in r.json()["detail"]
    assert _rows(fx.job_id) == ("succeeded", 2, 6)  # the failed call changed nothing
    assert len(keys_under(storage, fx.prefix)) == 2 + 6 + 1

    empty = make_job(storage, tenant.org_id, steps=[], status="cancelled")
    r = api.post(f"/v1/jobs/{empty.job_id}/finalize", json={"steps": [1]}, headers=tenant.auth)
    assert r.status_code == 409 and "available steps: none" in r.json()["detail"]

    _finalize(api, tenant, fx.job_id, steps=[10])
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [10]}, headers=tenant.auth)
    assert r.status_code == 409 and "is finalized" in r.json()["detail"]


@LOCAL
def test_a_cancelled_job_with_checkpoints_can_be_finalized(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[3], status="cancelled")
    assert len(_finalize(api, tenant, fx.job_id, steps=[3])["models"]) == 1


@LOCAL
@pytest.mark.parametrize("scopes", [["jobs:write"], ["models:write"], ["jobs:read", "models:read"]])
def test_finalize_needs_jobs_write_and_models_write(
    api: TestClient, storage: Storage, scopes: list[str]
) -> None:
    owner = make_tenant(scopes)
    fx = make_job(storage, owner.org_id, steps=[1], state_file=False)
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [1]}, headers=owner.auth)
    assert r.status_code == 403, r.text
    assert _rows(fx.job_id)[0] == "succeeded"
