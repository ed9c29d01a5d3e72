"""Presigned direct-to-storage uploads on both backends: the server checks what arrived."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.datasets import limits
from tests.conftest import Tenant
from tests.datasets.helpers import create_dataset, fetch, image_bytes, list_items, stored_keys


def _presign(client: TestClient, tenant: Tenant, dataset_id: str,
             files: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post(f"/v1/datasets/{dataset_id}/uploads", json={"files": files},
                    headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _send(client: TestClient, upload: dict[str, Any], data: bytes, content_type: str) -> int:
    """Upload as a browser would: a multipart POST of the given fields plus ``file``."""
    assert upload["method"] == "POST"
    files = {"file": ("blob", data, content_type)}
    if upload["url"].startswith("http://testserver/"):
        return client.post(upload["url"], data=upload["fields"], files=files).status_code
    return httpx.post(upload["url"], data=upload["fields"], files=files, timeout=10).status_code


def _complete(client: TestClient, tenant: Tenant, dataset_id: str, ids: list[str]
              ) -> dict[str, Any]:
    r = client.post(f"/v1/datasets/{dataset_id}/uploads/complete", json={"upload_ids": ids},
                    headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_presigned_upload_roundtrip(client: TestClient, tenant: Tenant, backend: str) -> None:
    ds = create_dataset(client, tenant)
    good, other = image_bytes("PNG"), image_bytes("JPEG")
    fake = b"not an image, just bytes!"
    liar = image_bytes("PNG", (16, 16))
    declared = [
        {"filename": "good.png", "content_type": "image/png", "size": len(good)},
        {"filename": "photo.jpg", "content_type": "image/jpeg", "size": len(other)},
        {"filename": "fake.png", "content_type": "image/png", "size": len(fake)},
        {"filename": "liar.png", "content_type": "image/png", "size": 10},
        {"filename": "never.png", "content_type": "image/png", "size": 100},
        {"filename": "doc.pdf", "content_type": "application/pdf", "size": 100},
        {"filename": "huge.png", "content_type": "image/png", "size": limits.MAX_FILE_BYTES + 1},
    ]
    body = _presign(client, tenant, ds["id"], declared)
    assert {r["filename"] for r in body["rejected"]} == {"doc.pdf", "huge.png"}
    ups = {u["filename"]: u for u in body["uploads"]}
    assert set(ups) == {"good.png", "photo.jpg", "fake.png", "liar.png", "never.png"}
    assert _send(client, ups["good.png"], good, "image/png") < 300
    assert _send(client, ups["photo.jpg"], other, "image/jpeg") < 300
    # Local storage refuses bytes that are not the signed image type (415); S3 stores them and
    # `complete` decodes and rejects them.
    sent_fake = _send(client, ups["fake.png"], fake, "image/png")
    assert sent_fake == 415 if backend == "local" else sent_fake < 300
    # Local storage refuses bytes over the signed size itself; moto does not, so the server's
    # own size check at `complete` is what catches it there.
    _send(client, ups["liar.png"], liar, "image/png")

    ids = [u["upload_id"] for u in body["uploads"]] + ["nope"]
    result = _complete(client, tenant, ds["id"], ids)
    assert sorted(i["filename"] for i in result["created"]) == ["good.png", "photo.jpg"]
    why = {r["filename"]: r["reason"] for r in result["rejected"]}
    if backend == "s3":
        assert "not a recognised image" in why["fake.png"]
    else:
        assert why["fake.png"] == "nothing was uploaded for this file"
    assert why["never.png"] == "nothing was uploaded for this file"
    assert "unknown upload id" in why["nope"]
    if backend == "s3":
        assert why["liar.png"] == f"uploaded {len(liar)} bytes but declared 10 bytes"
    else:
        assert why["liar.png"] == "nothing was uploaded for this file"

    items = {i["filename"]: i for i in list_items(client, tenant, ds["id"])}
    assert fetch(client, items["good.png"]["url"]) == good
    # Staged objects are gone whatever happened to them; only items and thumbnails remain.
    keys = stored_keys(tenant, ds["id"])
    assert not [k for k in keys if "/uploads/" in k]
    assert len(keys) == 4
    # A completed upload cannot be completed twice.
    again = _complete(client, tenant, ds["id"], [ups["good.png"]["upload_id"]])
    assert again["created"] == [] and "unknown upload id" in again["rejected"][0]["reason"]


def test_presign_refuses_what_cannot_fit(client: TestClient, tenant: Tenant,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.db import session_scope
    from app.models import Organization

    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None
        org.storage_limit_bytes = 1000
    ds = create_dataset(client, tenant)
    r = client.post(f"/v1/datasets/{ds['id']}/uploads", headers=tenant.auth, json={"files": [
        {"filename": "a.png", "content_type": "image/png", "size": 800},
        {"filename": "b.png", "content_type": "image/png", "size": 800},
    ]})
    assert r.status_code == 413
    assert r.json()["requested"] == 1600 and r.json()["limit"] == 1000


def test_expired_upload_is_refused_and_cleaned(client: TestClient, tenant: Tenant,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "PRESIGN_EXPIRES_S", 0)
    ds = create_dataset(client, tenant)
    png = image_bytes()
    up = _presign(client, tenant, ds["id"], [
        {"filename": "late.png", "content_type": "image/png", "size": len(png)}])["uploads"][0]
    result = _complete(client, tenant, ds["id"], [up["upload_id"]])
    assert "expired" in result["rejected"][0]["reason"]
    assert stored_keys(tenant, ds["id"]) == []
