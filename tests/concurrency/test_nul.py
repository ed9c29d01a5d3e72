"""Text PostgreSQL cannot store is refused up front, as a 422 naming the field, on every route.

Before: ``PATCH /v1/models/{id}`` with ``{"name": "renamed\\u0000x"}`` answered 200 with the new
name while nothing was stored (the commit failed after the answer). Now one request hook
checks every JSON or form body, query parameter and path segment: these tests try it on
several routes of different domains, and check that nothing was stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.datasets.helpers import create_dataset, image_bytes, upload

NUL = "renamed\u0000x"


def _refused(r: Any, loc: list[str]) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()


def _model(tenant: Tenant) -> str:
    from app.core.db import session_scope
    from app.models import Model

    with session_scope() as db:
        model = Model(org_id=tenant.org_id, name="original", type="lora", architecture="sd15",
                      base_model="tiny", step=10, files=[], bytes=0)
        db.add(model)
        db.flush()
        return model.id


def test_nul_in_a_model_rename_is_refused_and_nothing_is_stored(
        client: TestClient, tenant: Tenant) -> None:
    model_id = _model(tenant)
    r = client.patch(f"/v1/models/{model_id}", json={"name": NUL}, headers=tenant.auth)
    _refused(r, ["body", "name"])
    assert client.get(f"/v1/models/{model_id}", headers=tenant.auth).json()["name"] == "original"


def test_nul_in_dataset_names_and_captions_is_refused(client: TestClient, tenant: Tenant) -> None:
    ds = create_dataset(client, tenant, "original")
    _refused(client.patch(f"/v1/datasets/{ds['id']}", json={"name": NUL}, headers=tenant.auth),
             ["body", "name"])
    _refused(client.post("/v1/datasets", json={"name": "ok", "description": "a\u0000"},
                         headers=tenant.auth), ["body", "description"])
    item = upload(client, tenant, ds["id"], [("a.png", image_bytes())])["created"][0]
    url = f"/v1/datasets/{ds['id']}/items"
    _refused(client.patch(f"{url}/{item['id']}", json={"caption": "a cat\u0000"},
                          headers=tenant.auth), ["body", "caption"])
    _refused(client.patch(url, json={"items": [{"id": item["id"], "caption": "x\u0000"}]},
                          headers=tenant.auth), ["body", "items", "0", "caption"])
    # Nothing was stored, and a clean request still works.
    assert client.get(f"/v1/datasets/{ds['id']}", headers=tenant.auth).json()["name"] == "original"
    assert client.get(f"{url}/{item['id']}", headers=tenant.auth).json()["caption"] in (None, "")
    names = [d["name"] for d in client.get("/v1/datasets", headers=tenant.auth).json()["items"]]
    assert names == ["original"]
    ok = client.patch(f"{url}/{item['id']}", json={"caption": "a cat"}, headers=tenant.auth)
    assert ok.status_code == 200 and ok.json()["caption"] == "a cat"


@pytest.mark.parametrize("raw", [
    b'{"name": "\\ud800"}',               # an unpaired surrogate: valid JSON, not storable text
    b'{"name": "ok", "\\u0000": 1}',      # in a key
])
def test_other_unstorable_text_is_refused(client: TestClient, tenant: Tenant, raw: bytes) -> None:
    r = client.post("/v1/datasets", content=raw,
                    headers={**tenant.auth, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert client.get("/v1/datasets", headers=tenant.auth).json()["items"] == []


def test_nul_in_query_and_path_is_refused(client: TestClient, tenant: Tenant) -> None:
    _refused(client.get("/v1/datasets?cursor=abc%00", headers=tenant.auth), ["query", "cursor"])
    _refused(client.get("/v1/datasets/abc%00def", headers=tenant.auth), ["path", "dataset_id"])
    _refused(client.post("/v1/auth/login", content=b"email=a%00b&password=x",
                         headers={"content-type": "application/x-www-form-urlencoded"}),
             ["body", "email"])
