"""POST /v1/jobs validation, the frozen snapshot, cancel and retry of queued jobs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.jobs.conftest import job_body, make_dataset


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests check the API alone: jobs stay queued (no worker is running).
    monkeypatch.setattr("app.jobs.dispatch.send", lambda ids: None)


def _post(client: TestClient, tenant: Tenant, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", json=body, headers=tenant.auth)


def test_lists_base_models_and_templates(client: TestClient, tenant: Tenant,
                                         tiny_base_model: str) -> None:
    models = client.get("/v1/base-models", headers=tenant.auth).json()
    assert {"key": tiny_base_model, "name": "Tiny sd15 (demo)", "architecture": "sd15",
            "resolution": 64} in models
    templates = client.get("/v1/training-templates", headers=tenant.auth).json()
    keys = {t["key"] for t in templates}
    assert {"sd15-lora-style", "sdxl-ti-object", "sd15-pivotal-character"} <= keys
    assert all({"key", "name", "type", "architecture", "description", "defaults"} <= t.keys()
               for t in templates)


def test_create_freezes_resolved_config_and_snapshot(client: TestClient, tenant: Tenant,
                                                     tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 2)
    r = _post(client, tenant, job_body(ds, tiny_base_model, template="sd15-lora-quick-test",
                                       caption_prefix="zkw"))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["queue_position"] >= 1
    assert job["config"]["rank"] == 4 and job["config"]["caption_prefix"] == "zkw"
    assert job["config"]["max_train_steps"] == 6 and job["config"]["resolution"] == 64
    assert job["item_count"] == 2 and job["progress"]["total_steps"] == 6

    # Editing the dataset afterwards does not change the job.
    from app.core.db import session_scope
    from app.models import DatasetItem, TrainingJob

    with session_scope() as db:
        for item in db.query(DatasetItem).filter_by(dataset_id=ds):
            item.caption = "changed"
        snapshot = db.get(TrainingJob, job["id"]).dataset_snapshot  # type: ignore[union-attr]
    assert {s["caption"] for s in snapshot} == {"a red square"}


@pytest.mark.parametrize(("change", "loc", "words"), [
    ({"dataset_id": "0" * 28}, ["body", "dataset_id"], "does not exist"),
    ({"base_model": "nope"}, ["body", "base_model"], "does not exist"),
    ({"template": "sdxl-lora-style"}, ["body", "template"], "sdxl"),
    ({"template": "sd15-ti-object"}, ["body", "template"], "trains textual_inversion"),
    ({"learning_rate": 5.0}, ["body", "learning_rate"], "Learning rate: must be at most 1"),
    ({"max_train_steps": 0}, ["body", "max_train_steps"], "Training steps: must be at least 1"),
    ({"advanced": {"rank": 0}}, ["body", "advanced", "rank"], "LoRA rank: must be at least 1"),
    ({"advanced": {"bogus": 1}}, ["body", "advanced", "bogus"],
     "bogus in Advanced › Other options: is not a known option"),
    ({"max_train_steps": 20, "advanced": {"lr_warmup_steps": 50}},
     ["body", "advanced", "lr_warmup_steps"],
     "Warm-up steps (lr_warmup_steps) in Advanced › Other options: the warm-up"),
    ({"type": "pivotal", "placeholder_token": "<tabby>", "caption_prefix": "a photo of tabby"},
     ["body", "caption_prefix"], "must contain the placeholder token '<tabby>'"),
    ({"type": "textual_inversion", "initial_phrase": "muchtoolong"}, ["body", "initial_phrase"],
     "at most 8"),
])
def test_validation_errors_name_the_field(client: TestClient, tenant: Tenant,
                                          tiny_base_model: str, change: dict[str, Any],
                                          loc: list[str], words: str) -> None:
    ds = make_dataset(tenant, 1)
    body = {**job_body(ds, tiny_base_model), **change}
    r = _post(client, tenant, body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert any(e["loc"][:len(loc)] == loc for e in problem["errors"]), problem
    assert words in problem["detail"] or any(words in e["msg"] for e in problem["errors"])
    # In the form's language: no paths, no pydantic phrases.
    for text in [problem["detail"], *(e["msg"] for e in problem["errors"])]:
        for raw in ("body.", "Input should", "Value error", "Extra inputs", "Field required"):
            assert raw not in text, (raw, text)


def test_empty_dataset_and_missing_captions(client: TestClient, tenant: Tenant,
                                            tiny_base_model: str) -> None:
    empty = make_dataset(tenant, 0)
    r = _post(client, tenant, job_body(empty, tiny_base_model))
    assert r.status_code == 422 and "no images" in r.json()["detail"]
    bare = make_dataset(tenant, 2, captions=False)
    r = _post(client, tenant, job_body(bare, tiny_base_model))
    assert r.status_code == 422 and "caption" in r.json()["detail"]
    # A caption prefix (trigger word) is enough for a concept model; an embedding needs neither.
    assert _post(client, tenant, job_body(bare, tiny_base_model,
                                          caption_prefix="zkw")).status_code == 201
    assert _post(client, tenant, job_body(bare, tiny_base_model,
                                          type_="textual_inversion")).status_code == 201


def test_cancel_queued_at_once_then_retry(client: TestClient, tenant: Tenant,
                                          tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 1)
    job = _post(client, tenant, job_body(ds, tiny_base_model)).json()
    r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.auth)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.auth).status_code == 200
    retry = client.post(f"/v1/jobs/{job['id']}/retry", headers=tenant.auth)
    assert retry.status_code == 201 and retry.json()["status"] == "queued"
    assert retry.json()["retry_of"] == job["id"]
    r = client.post(f"/v1/jobs/{retry.json()['id']}/retry", headers=tenant.auth)
    assert r.status_code == 409 and "queued" in r.json()["detail"]
    listed = client.get("/v1/jobs?status=cancelled", headers=tenant.auth).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_viewer_key_cannot_create(client: TestClient, tiny_base_model: str) -> None:
    from tests.conftest import make_tenant

    reader = make_tenant(scopes=["jobs:read", "datasets:read"])
    ds = make_dataset(reader, 1)
    assert _post(client, reader, job_body(ds, tiny_base_model)).status_code == 403


def test_idempotent_repeat_creates_nothing(client: TestClient, tenant: Tenant,
                                           tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 1)
    body = job_body(ds, tiny_base_model)
    headers = {**tenant.auth, "Idempotency-Key": "create-once"}
    first = client.post("/v1/jobs", json=body, headers=headers)
    again = client.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    jobs = client.get("/v1/jobs", headers=tenant.auth).json()["items"]
    assert [j["id"] for j in jobs] == [first.json()["id"]]
    other = client.post("/v1/jobs", json={**body, "name": "different"}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]


def test_monthly_gpu_quota_refuses_new_jobs(client: TestClient, tenant: Tenant,
                                            tiny_base_model: str) -> None:
    from app.core.db import session_scope
    from app.models import Organization

    with session_scope() as db:
        db.get(Organization, tenant.org_id).monthly_gpu_seconds_limit = 0  # type: ignore[union-attr]
    r = _post(client, tenant, job_body(make_dataset(tenant, 1), tiny_base_model))
    assert r.status_code == 429 and "monthly_gpu_seconds_limit" in r.json()["detail"]
