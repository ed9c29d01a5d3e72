"""Dataset CRUD and counts; deletion of items and datasets (storage emptied, active jobs
protected)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.datasets.helpers import create_dataset, image_bytes, list_items, stored_keys, upload


def test_crud_and_pagination(client: TestClient, tenant: Tenant) -> None:
    made = [create_dataset(client, tenant, f"set {i}") for i in range(3)]
    assert made[0]["item_count"] == made[0]["total_bytes"] == 0
    page = client.get("/v1/datasets", params={"limit": 2}, headers=tenant.auth).json()
    assert [d["id"] for d in page["items"]] == [made[2]["id"], made[1]["id"]]  # newest first
    rest = client.get("/v1/datasets", params={"limit": 2, "cursor": page["next_cursor"]},
                      headers=tenant.auth).json()
    assert [d["id"] for d in rest["items"]] == [made[0]["id"]] and rest["next_cursor"] is None

    dsid = made[0]["id"]
    upload(client, tenant, dsid, [("a.png", image_bytes()), ("b.png", image_bytes())])
    r = client.patch(f"/v1/datasets/{dsid}", json={"name": "renamed", "description": "d"},
                     headers=tenant.auth)
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["description"], r.json()["item_count"]) == (
        "renamed", "d", 2)
    listed = client.get("/v1/datasets", headers=tenant.auth).json()["items"]
    assert next(d for d in listed if d["id"] == dsid)["item_count"] == 2
    bad = client.post("/v1/datasets", json={"name": "", "extra": 1}, headers=tenant.auth)
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("body", "name"),
                                                               ("body", "extra")}
    assert {"dataset.create", "dataset.items.upload", "dataset.update"} <= _actions(tenant)


def _actions(tenant: Tenant) -> set[str]:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import AuditEvent

    with session_scope() as db:
        return set(db.scalars(select(AuditEvent.action).where(
            AuditEvent.org_id == tenant.org_id)))


def test_deletes_leave_nothing_in_storage(client: TestClient, tenant: Tenant,
                                          backend: str) -> None:
    ds = create_dataset(client, tenant)
    result = upload(client, tenant, ds["id"], [(f"{i}.png", image_bytes()) for i in range(3)])
    first = result["created"][0]
    assert len(stored_keys(tenant, ds["id"])) == 6
    r = client.delete(f"/v1/datasets/{ds['id']}/items/{first['id']}", headers=tenant.auth)
    assert r.status_code == 204
    assert len(stored_keys(tenant, ds["id"])) == 4
    assert not [k for k in stored_keys(tenant, ds["id"]) if first["id"] in k]
    assert len(list_items(client, tenant, ds["id"])) == 2

    # A presigned upload that was never completed is staged storage too.
    from app.storage.factory import get_storage

    get_storage().put(f"orgs/{tenant.org_id}/datasets/{ds['id']}/uploads/orphan", b"x")
    assert client.delete(f"/v1/datasets/{ds['id']}", headers=tenant.auth).status_code == 204
    assert stored_keys(tenant, ds["id"]) == []
    assert client.get(f"/v1/datasets/{ds['id']}", headers=tenant.auth).status_code == 404
    assert {"dataset.item.delete", "dataset.delete"} <= _actions(tenant)


def _job(tenant: Tenant, dataset_id: str, item_ids: list[str], status: str) -> str:
    from app.core.db import session_scope
    from app.models import TrainingJob

    with session_scope() as db:
        job = TrainingJob(
            org_id=tenant.org_id, dataset_id=dataset_id, name="j", type="lora",
            architecture="sd15", base_model="tiny", config={}, status=status,
            dataset_snapshot=[{"id": i, "caption": None} for i in item_ids],
        )
        db.add(job)
        db.flush()
        return job.id


@pytest.mark.parametrize("status", ["queued", "running", "cancelling"])
def test_active_job_blocks_deletes(client: TestClient, tenant: Tenant, status: str) -> None:
    ds = create_dataset(client, tenant)
    created: list[dict[str, Any]] = upload(
        client, tenant, ds["id"], [("a.png", image_bytes()), ("b.png", image_bytes())]
    )["created"]
    job_id = _job(tenant, ds["id"], [created[0]["id"]], status)
    r = client.delete(f"/v1/datasets/{ds['id']}/items/{created[0]['id']}", headers=tenant.auth)
    assert r.status_code == 409 and job_id in r.json()["detail"]
    r = client.delete(f"/v1/datasets/{ds['id']}", headers=tenant.auth)
    assert r.status_code == 409
    # An item added after the job was created is not in its snapshot: free to go.
    r = client.delete(f"/v1/datasets/{ds['id']}/items/{created[1]['id']}", headers=tenant.auth)
    assert r.status_code == 204
    assert len(stored_keys(tenant, ds["id"])) == 2


def test_finished_job_does_not_block(client: TestClient, tenant: Tenant) -> None:
    ds = create_dataset(client, tenant)
    created = upload(client, tenant, ds["id"], [("a.png", image_bytes())])["created"]
    _job(tenant, ds["id"], [created[0]["id"]], "succeeded")
    assert client.delete(f"/v1/datasets/{ds['id']}", headers=tenant.auth).status_code == 204
