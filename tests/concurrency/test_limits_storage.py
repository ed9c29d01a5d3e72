"""The storage quota holds under concurrent uploads (multipart and presigned complete), on
PostgreSQL and SQLite, against a real server: the check and the insert are one locked step."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from app.models import DatasetItem
from tests.concurrency.limits_support import Server, at_once, png, server_fixture  # noqa: F401

N = 8
LIMIT = 300_000  # three ~98 KB images fit, the fourth does not
FITS = 3


def _dataset(api: httpx.Client, auth: dict[str, str]) -> str:
    r = api.post("/v1/datasets", json={"name": "quota edge"}, headers=auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _stored_items(server: Server, org_id: str) -> tuple[int, int]:
    with server.session() as db:
        count, total = db.execute(
            select(func.count(), func.coalesce(func.sum(DatasetItem.bytes), 0))
            .where(DatasetItem.org_id == org_id)).one()
    return int(count), int(total)


def _item_objects(server: Server, org_id: str, dataset_id: str) -> list[str]:
    folder = server.storage_dir / "orgs" / org_id / "datasets" / dataset_id / "items"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _check_refusal(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["quota"] == "storage_limit_bytes" and body["limit"] == LIMIT
    assert body["used"] + body["requested"] > LIMIT, body
    assert "storage_limit_bytes" in body["detail"]


def _outcome(server: Server, tenant_org: str, dataset_id: str, answers: list[Any]) -> None:
    errors = [a for a in answers if isinstance(a, Exception)]
    assert not errors, errors
    codes = sorted(a.status_code for a in answers)
    count, total = _stored_items(server, tenant_org)
    assert total <= LIMIT, f"{total} bytes stored, limit {LIMIT}; answers {codes}"
    assert count == codes.count(200) == FITS, codes  # exactly what fits, no more, no less
    for r in answers:
        if r.status_code != 200:
            _check_refusal(r)
    # Nothing half-written: exactly one object per recorded item.
    with server.session() as db:
        keys = sorted(k.rsplit("/", 1)[1] for k in db.scalars(
            select(DatasetItem.storage_key).where(DatasetItem.dataset_id == dataset_id)))
    assert _item_objects(server, tenant_org, dataset_id) == keys


def test_concurrent_uploads_never_exceed_the_storage_quota(server: Server) -> None:
    tenant = server.tenant(storage_limit_bytes=LIMIT)
    images = [png(180) for _ in range(N)]
    assert all(95_000 < len(i) < 100_000 for i in images), [len(i) for i in images]
    with server.client() as api:
        ds = _dataset(api, tenant.auth)

        def upload(data: bytes) -> Any:
            def call() -> httpx.Response:
                with server.client() as c:
                    return c.post(f"/v1/datasets/{ds}/items", headers=tenant.auth,
                                  files=[("files", ("x.png", data, "image/png"))])
            return call

        answers = at_once([upload(i) for i in images])
    _outcome(server, tenant.org_id, ds, answers)


def test_concurrent_presigned_completes_never_exceed_the_storage_quota(server: Server) -> None:
    tenant = server.tenant(storage_limit_bytes=LIMIT)
    images = [png(180) for _ in range(N)]
    with server.client() as api:
        ds = _dataset(api, tenant.auth)
        ids = []
        for data in images:  # one presign each: each alone fits the quota
            r = api.post(f"/v1/datasets/{ds}/uploads", headers=tenant.auth, json={"files": [
                {"filename": "x.png", "content_type": "image/png", "size": len(data)}]})
            assert r.status_code == 200, r.text
            up = r.json()["uploads"][0]
            sent = httpx.post(up["url"], data=up["fields"], timeout=30,
                              files={"file": ("blob", data, "image/png")})
            assert sent.status_code < 300, sent.text
            ids.append(up["upload_id"])

        def complete(upload_id: str) -> Any:
            def call() -> httpx.Response:
                with server.client() as c:
                    return c.post(f"/v1/datasets/{ds}/uploads/complete", headers=tenant.auth,
                                  json={"upload_ids": [upload_id]})
            return call

        answers = at_once([complete(u) for u in ids])
    _outcome(server, tenant.org_id, ds, answers)
    # The staged objects are gone too, accepted or refused.
    staged = server.storage_dir / "orgs" / tenant.org_id / "datasets" / ds / "uploads"
    assert not staged.exists() or not list(staged.iterdir())
