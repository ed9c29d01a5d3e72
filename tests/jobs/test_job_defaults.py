"""Job defaults from the base model: native resolution, refusal far above it, derived
validation prompts and placeholder tokens (no worker runs here)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.jobs.conftest import make_dataset
from worker.training.templates import (
    TEMPLATES,
    default_validation_prompts,
    placeholder_from_name,
    resolution_for,
)


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.jobs.dispatch.send", lambda ids: None)


def _create(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> Any:
    return client.post("/v1/jobs", json=body, headers=tenant.auth)


def _body(ds: str, base: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Spring Catalogue!", "dataset_id": ds, "type": "lora", "base_model": base,
            **extra}


def test_template_resolution_follows_the_base_model(client: TestClient, tenant: Tenant,
                                                    tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 2)
    obj = _create(client, tenant, _body(ds, tiny_base_model, template="sd15-lora-object"))
    assert obj.status_code == 201, obj.text
    assert obj.json()["config"]["resolution"] == 64  # the tiny model's own size, not 512
    quick = _create(client, tenant, _body(ds, tiny_base_model, template="sd15-lora-quick-test"))
    assert quick.json()["config"]["resolution"] == 32  # the template's half, of 64
    plain = _create(client, tenant, _body(ds, tiny_base_model))
    assert plain.json()["config"]["resolution"] == 64


def test_resolution_far_above_native_is_refused(client: TestClient, tenant: Tenant,
                                                tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 1)
    r = _create(client, tenant, _body(ds, tiny_base_model, advanced={"resolution": 512}))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert "512 px" in problem["detail"] and "64 px" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "advanced", "resolution"]
    ok = _create(client, tenant, _body(ds, tiny_base_model, advanced={"resolution": 128}))
    assert ok.status_code == 201, ok.text


def test_no_prompts_gets_prompts_from_the_trigger(client: TestClient, tenant: Tenant,
                                                  tiny_base_model: str) -> None:
    ds = make_dataset(tenant, 1)
    lora = _create(client, tenant, _body(ds, tiny_base_model, caption_prefix="zkw mug")).json()
    assert lora["config"]["validation_prompts"] == ["zkw mug", "zkw mug, in a different setting"]
    ti = _create(client, tenant, _body(ds, tiny_base_model, type="textual_inversion",
                                       template="sd15-ti-style")).json()
    assert ti["config"]["placeholder_token"] == "<spring-catalogue>"
    assert ti["config"]["validation_prompts"][0] == "a painting in the style of <spring-catalogue>"
    given = _create(client, tenant, _body(ds, tiny_base_model,
                                          validation_prompts=["my own"])).json()
    assert given["config"]["validation_prompts"] == ["my own"]


def test_base_models_list_their_resolution(client: TestClient, tenant: Tenant,
                                           tiny_base_model: str) -> None:
    models = {m["key"]: m for m in client.get("/v1/base-models", headers=tenant.auth).json()}
    assert models[tiny_base_model]["resolution"] == 64


def test_template_helpers() -> None:
    assert resolution_for(512, "sd15", 512) == 512 and resolution_for(1024, "sdxl", 64) == 64
    assert resolution_for(256, "sd15", 64) == 32
    assert placeholder_from_name("  ") == "<concept>"
    assert placeholder_from_name("My Cat's Portrait") == "<my-cat-s-portrait>"
    assert default_validation_prompts({"type": "lora"}) == ["a photo", "a painting"]
    # No template carries a generic placeholder word a user would silently train on.
    assert not any("placeholder_token" in t.defaults for t in TEMPLATES)
