""""Use this model": trigger and per-client steps for a finalized model, tenant-scoped."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import fetch, make_job


def _finalize(api: TestClient, storage: Storage, tenant: Tenant, type: str) -> dict:
    fx = make_job(storage, tenant.org_id, steps=[3], type=type, name="Red Cat: v2!",
                  state_file=False)
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [3]}, headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["models"][0]


def test_usage_gives_trigger_and_steps_per_client(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _finalize(api, storage, tenant, "lora")
    r = api.get(f"/v1/models/{model['id']}/usage", headers=tenant.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trigger"] == model["trigger"] == "sks person"
    assert body["file_stem"] == "red-cat-v2-step-3"  # a name every OS accepts
    clients = {c["client"]: c for c in body["clients"]}
    assert set(clients) == {"comfyui", "a1111", "invokeai", "diffusers"}
    assert "ComfyUI/models/loras/red-cat-v2-step-3.safetensors" in clients["comfyui"]["steps"][0]
    assert clients["a1111"]["snippet"] == "sks person <lora:red-cat-v2-step-3:1>"
    # InvokeAI installs from a plain URL (no API key): the snippet is the signed file URL.
    (url,) = clients["invokeai"]["snippet"].splitlines()
    (entry,) = model["files"]
    assert hashlib.sha256(fetch(api, url)).hexdigest() == entry["sha256"]
    assert 'pipe.load_lora_weights("lora.safetensors")' in clients["diffusers"]["snippet"]


def test_usage_of_pivotal_and_embedding_models(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    pivotal = _finalize(api, storage, tenant, "pivotal")
    body = api.get(f"/v1/models/{pivotal['id']}/usage", headers=tenant.auth).json()
    clients = {c["client"]: c for c in body["clients"]}
    assert body["trigger"] == "<sks>"
    assert clients["comfyui"]["files"] == ["lora.safetensors", "embedding.safetensors"]
    assert 'load_textual_inversion("embedding.safetensors", token="<sks>")' in (
        clients["diffusers"]["snippet"])
    embedding = _finalize(api, storage, tenant, "textual_inversion")
    body = api.get(f"/v1/models/{embedding['id']}/usage", headers=tenant.auth).json()
    clients = {c["client"]: c for c in body["clients"]}
    # A1111 and ComfyUI call embeddings by file name: the download is named by the trigger word,
    # so the word to type is the token itself.
    assert clients["a1111"]["snippet"] == "sks"
    assert clients["comfyui"]["snippet"] == "embedding:sks"
    assert body["file_stem"] == "sks"


def test_usage_of_another_orgs_model_is_a_404(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _finalize(api, storage, tenant, "lora")
    other = make_tenant()
    r = api.get(f"/v1/models/{model['id']}/usage", headers=other.auth)
    assert r.status_code == 404
