"""`POST /v1/api-keys/{key_id}/rotate`: a new secret for the same key id, name and scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.identity import service
from tests.conftest import Tenant


def _key(tenant: Tenant, scopes: list[str], **kw: object) -> tuple[str, dict[str, str]]:
    with session_scope() as db:
        row, key = service.create_api_key(db, tenant.org_id, "ci", scopes, **kw)  # type: ignore[arg-type]
        return row.id, {"Authorization": f"Bearer {key}"}


def test_rotation_replaces_the_secret(client: TestClient, tenant: Tenant) -> None:
    key_id, old = _key(tenant, ["jobs:read", "models:read"])
    assert client.get("/v1/me", headers=old).status_code == 200
    r = client.post(f"/v1/api-keys/{key_id}/rotate", headers=tenant.auth)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["id"] == key_id and rotated["name"] == "ci"
    assert rotated["scopes"] == ["jobs:read", "models:read"]
    assert rotated["key"].startswith("atl_") and rotated["key"].split("_")[1] == rotated["prefix"]

    assert client.get("/v1/me", headers=old).status_code == 401
    new = {"Authorization": f"Bearer {rotated['key']}"}
    me = client.get("/v1/me", headers=new)
    assert me.status_code == 200 and me.json()["principal"]["id"] == key_id
    assert me.json()["scopes"] == ["jobs:read", "models:read"]

    r = client.get(f"/v1/audit-events?action=api_key.rotate&target_id={key_id}",
                   headers=tenant.auth)
    assert len(r.json()["items"]) == 1


def test_an_admin_key_can_rotate_itself(client: TestClient, tenant: Tenant) -> None:
    r = client.post(f"/v1/api-keys/{tenant.api_key_id}/rotate", headers=tenant.auth)
    assert r.status_code == 200
    assert client.get("/v1/me", headers=tenant.auth).status_code == 401
    fresh = {"Authorization": f"Bearer {r.json()['key']}"}
    assert client.get("/v1/me", headers=fresh).status_code == 200


def test_rotation_refusals(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    key_id, reader = _key(tenant, ["jobs:read"])
    assert client.post(f"/v1/api-keys/{key_id}/rotate", headers=reader).status_code == 403
    assert client.post(f"/v1/api-keys/{key_id}/rotate",
                       headers=other_tenant.auth).status_code == 404

    expired_id, _ = _key(tenant, ["jobs:read"],
                         expires_at=datetime.now(UTC) - timedelta(minutes=1))
    r = client.post(f"/v1/api-keys/{expired_id}/rotate", headers=tenant.auth)
    assert r.status_code == 409 and "expired" in r.json()["detail"]

    assert client.delete(f"/v1/api-keys/{key_id}", headers=tenant.auth).status_code == 204
    r = client.post(f"/v1/api-keys/{key_id}/rotate", headers=tenant.auth)
    assert r.status_code == 409 and "revoked" in r.json()["detail"]
