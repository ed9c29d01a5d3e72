"""The model library: list, get, rename, delete, download, and tenant isolation."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import session_scope
from app.core.keys import model_prefix
from app.core.usage import storage_bytes
from app.models import AuditEvent
from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import fetch, keys_under, make_job

LOCAL = pytest.mark.parametrize("backend", ["local"], indirect=True)


def _models(api: TestClient, storage: Storage, tenant: Tenant, *, type: str = "lora",
            steps: tuple[int, ...] = (1,), name: str = "Portraits") -> list[dict]:
    fx = make_job(storage, tenant.org_id, steps=list(steps), type=type, name=name,
                  state_file=False)
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": list(steps)},
                 headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["models"]


def test_download_redirects_to_a_short_lived_url_of_each_file(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    (model,) = _models(api, storage, tenant, type="pivotal", steps=(7,))
    base = f"/v1/models/{model['id']}/download"
    for query, name in (("", "lora.safetensors"), ("?file=embedding.safetensors",
                                                    "embedding.safetensors")):
        r = api.get(base + query, headers=tenant.auth, follow_redirects=False)
        assert r.status_code == 302, r.text
        data = fetch(api, r.headers["location"])
        entry = next(f for f in model["files"] if f["name"] == name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    r = api.get(base + "?file=nope.bin", headers=tenant.auth, follow_redirects=False)
    assert r.status_code == 404 and "lora.safetensors, embedding.safetensors" in r.text
    assert fetch(api, model["preview_images"][0]["url"])  # previews are reachable too


def test_deleting_a_model_removes_its_files(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    keep, gone = _models(api, storage, tenant, steps=(1, 2))
    prefix = model_prefix(tenant.org_id, gone["id"])
    assert len(keys_under(storage, prefix)) == 3
    with session_scope() as db:
        before = storage_bytes(db, tenant.org_id)
    r = api.delete(f"/v1/models/{gone['id']}", headers=tenant.auth)
    assert r.status_code == 204, r.text
    assert keys_under(storage, prefix) == []
    assert len(keys_under(storage, model_prefix(tenant.org_id, keep["id"]))) == 3
    with session_scope() as db:
        assert before - storage_bytes(db, tenant.org_id) == gone["storage_bytes"]
        assert db.scalar(select(AuditEvent.action).where(
            AuditEvent.target_id == gone["id"])) == "model.deleted"
    assert api.get(f"/v1/models/{gone['id']}", headers=tenant.auth).status_code == 404


@LOCAL
def test_list_filters_search_and_pages(api: TestClient, storage: Storage) -> None:
    tenant = make_tenant()
    _models(api, storage, tenant, type="lora", steps=(1, 2), name="Red_Cat 100%")
    _models(api, storage, tenant, type="textual_inversion", steps=(3,), name="Blue dog")

    def names(query: str) -> list[str]:
        r = api.get(f"/v1/models{query}", headers=tenant.auth)
        assert r.status_code == 200, r.text
        return [m["name"] for m in r.json()["items"]]

    assert names("") == ["Blue dog · step 3", "Red_Cat 100% · step 2", "Red_Cat 100% · step 1"]
    assert names("?order=asc")[0] == "Red_Cat 100% · step 1"
    assert names("?type=textual_inversion") == ["Blue dog · step 3"]
    assert names("?type=lora&architecture=sd15&q=STEP 1") == ["Red_Cat 100% · step 1"]
    assert names("?architecture=sdxl") == []
    assert names("?q=_cat 100%") == ["Red_Cat 100% · step 2", "Red_Cat 100% · step 1"]
    assert names("?q=r_c") == []  # '_' is literal, not a wildcard
    r = api.get("/v1/models?type=checkpoint", headers=tenant.auth)
    assert r.status_code == 422
    page1 = api.get("/v1/models?limit=2", headers=tenant.auth).json()
    page2 = api.get(f"/v1/models?limit=2&cursor={page1['next_cursor']}",
                    headers=tenant.auth).json()
    assert len(page1["items"]) == 2 and len(page2["items"]) == 1
    assert page2["next_cursor"] is None


@LOCAL
def test_get_and_rename(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    (model,) = _models(api, storage, tenant, type="textual_inversion", steps=(4,))
    got = api.get(f"/v1/models/{model['id']}", headers=tenant.auth).json()
    for field in ("id", "name", "type", "architecture", "base_model", "trigger", "step",
                  "job_id", "dataset_id", "bytes", "files", "preview_images", "config",
                  "created_at"):
        assert field in got
    assert got["trigger"] == "<sks>" and got["step"] == 4
    r = api.patch(f"/v1/models/{model['id']}", json={"name": "  My token "},
                  headers=tenant.auth)
    assert r.status_code == 200 and r.json()["name"] == "My token"
    assert api.get(f"/v1/models/{model['id']}", headers=tenant.auth).json()["name"] == "My token"
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"title": "x"}):
        r = api.patch(f"/v1/models/{model['id']}", json=body, headers=tenant.auth)
        assert r.status_code == 422, body
    with session_scope() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "model.renamed",
                                                   AuditEvent.target_id == model["id"]))
        assert event is not None and event.details["to"] == "My token"


@LOCAL
def test_read_scope_cannot_change_models(api: TestClient, storage: Storage,
                                         tenant: Tenant) -> None:
    (model,) = _models(api, storage, tenant)
    with session_scope() as db:
        from app.identity import service

        _, key = service.create_api_key(db, tenant.org_id, "reader", ["models:read"])
    reader = {"Authorization": f"Bearer {key}"}
    url = f"/v1/models/{model['id']}"
    assert api.get(url, headers=reader).status_code == 200
    assert api.get(url + "/download", headers=reader, follow_redirects=False).status_code == 302
    assert api.patch(url, json={"name": "x"}, headers=reader).status_code == 403
    assert api.delete(url, headers=reader).status_code == 403
    assert api.get("/v1/models", headers=make_tenant(["jobs:read"]).auth).status_code == 403


@LOCAL
def test_another_org_gets_404_on_every_model_route(
    api: TestClient, storage: Storage, tenant: Tenant, other_tenant: Tenant
) -> None:
    (model,) = _models(api, storage, tenant)
    job = make_job(storage, tenant.org_id, steps=[1], state_file=False)
    url = f"/v1/models/{model['id']}"
    calls = [
        ("GET", url, None), ("PATCH", url, {"name": "stolen"}), ("DELETE", url, None),
        ("GET", url + "/download", None), ("GET", url + "/download?file=lora.safetensors", None),
        ("POST", f"/v1/jobs/{job.job_id}/finalize", {"steps": [1]}),
        ("POST", f"/v1/jobs/{job.job_id}/finalize", {"steps": []}),  # 404 before validation
    ]
    for method, path, body in calls:
        r = api.request(method, path, json=body, headers=other_tenant.auth,
                        follow_redirects=False)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    listed = api.get("/v1/models", headers=other_tenant.auth).json()["items"]
    assert model["id"] not in [m["id"] for m in listed]
    # Nothing changed for the owner.
    assert api.get(url, headers=tenant.auth).json()["name"] == model["name"]
    assert len(keys_under(storage, model_prefix(tenant.org_id, model["id"]))) == 3
