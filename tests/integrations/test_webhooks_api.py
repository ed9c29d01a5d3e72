"""Webhook endpoint CRUD: validation, secret shown once, tenancy, scopes, audit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant, make_tenant

EVENTS = ["job.cancelled", "job.failed", "job.finalized", "job.started", "job.succeeded"]


def test_crud_round_trip(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/webhooks", headers=tenant.auth,
                    json={"url": "https://hooks.example.com/atelier", "description": "ci"})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["events"] == EVENTS and hook["active"] is True

    r = client.get(f"/v1/webhooks/{hook['id']}", headers=tenant.auth)
    assert r.status_code == 200 and "secret" not in r.json()
    r = client.get("/v1/webhooks", headers=tenant.auth)
    assert [h["id"] for h in r.json()["items"]] == [hook["id"]]
    assert "secret" not in r.json()["items"][0]

    r = client.patch(f"/v1/webhooks/{hook['id']}", headers=tenant.auth,
                     json={"events": ["job.failed", "job.failed"], "active": False})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["job.failed"] and r.json()["active"] is False
    assert r.json()["url"] == "https://hooks.example.com/atelier"

    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=tenant.auth).status_code == 204
    r = client.get(f"/v1/webhooks/{hook['id']}", headers=tenant.auth)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

    r = client.get("/v1/audit-events?action=webhook.*&order=asc", headers=tenant.auth)
    assert [e["action"] for e in r.json()["items"]] == [
        "webhook.create", "webhook.update", "webhook.delete"]
    assert {e["target_id"] for e in r.json()["items"]} == {hook["id"]}


INVALID = [
    ({"url": "ftp://example.com/x"}, ["body", "url"]),
    ({"url": "http://"}, ["body", "url"]),
    ({"url": "https://user:pw@example.com/"}, ["body", "url"]),
    ({"url": "javascript:alert(1)"}, ["body", "url"]),
    ({"url": "http://example.com:99999/"}, ["body", "url"]),
    ({"url": "https://example.com", "events": ["job.exploded"]}, ["body", "events", "0"]),
    ({"url": "https://example.com", "events": []}, ["body", "events"]),
    ({"url": "https://example.com", "secret": "mine"}, ["body", "secret"]),
    ({"url": "http://a\x00b.example"}, ["body", "url"]),
    ({"url": "https://example.com", "description": "a\x00b"}, ["body", "description"]),
]


def test_invalid_webhooks_are_422(client: TestClient, tenant: Tenant) -> None:
    # One test, many bodies: each case is one request, not worth an app and a tenant of its own.
    for body, loc in INVALID:
        r = client.post("/v1/webhooks", json=body, headers=tenant.auth)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert loc in [e["loc"] for e in r.json()["errors"]], (body, r.json())
    assert client.get("/v1/webhooks", headers=tenant.auth).json()["items"] == []


def test_patch_validates_url(client: TestClient, tenant: Tenant) -> None:
    hook = client.post("/v1/webhooks", json={"url": "http://a.example"}, headers=tenant.auth)
    r = client.patch(f"/v1/webhooks/{hook.json()['id']}", json={"url": "file:///etc/passwd"},
                     headers=tenant.auth)
    assert r.status_code == 422


def test_other_orgs_and_scopes(client: TestClient, tenant: Tenant,
                               other_tenant: Tenant) -> None:
    hook = client.post("/v1/webhooks", json={"url": "http://a.example"}, headers=tenant.auth)
    hook_id = hook.json()["id"]
    for method, path, body in [("GET", "", None), ("PATCH", "", {"active": False}),
                               ("DELETE", "", None), ("GET", "/deliveries", None)]:
        r = client.request(method, f"/v1/webhooks/{hook_id}{path}", json=body,
                           headers=other_tenant.auth)
        assert r.status_code == 404, (method, path, r.text)
    assert client.get("/v1/webhooks", headers=other_tenant.auth).json()["items"] == []

    reader = make_tenant(scopes=["jobs:read", "jobs:write"])
    assert client.get("/v1/webhooks", headers=reader.auth).status_code == 403
    r = client.post("/v1/webhooks", json={"url": "http://a.example"}, headers=reader.auth)
    assert r.status_code == 403


def test_redeliver_unknown_or_disabled(client: TestClient, tenant: Tenant) -> None:
    from app.core.db import session_scope
    from app.integrations.webhooks import emit_event
    from app.models import WebhookDelivery

    hook = client.post("/v1/webhooks", json={"url": "http://a.example"}, headers=tenant.auth)
    hook_id = hook.json()["id"]
    r = client.post(f"/v1/webhooks/{hook_id}/deliveries/{'0' * 28}/redeliver",
                    headers=tenant.auth)
    assert r.status_code == 404
    with session_scope() as db:
        emit_event(db, tenant.org_id, "job.started", {"job": {"id": "x"}})
    with session_scope() as db:
        delivery = db.query(WebhookDelivery).filter_by(endpoint_id=hook_id).one()
    client.patch(f"/v1/webhooks/{hook_id}", json={"active": False}, headers=tenant.auth)
    r = client.post(f"/v1/webhooks/{hook_id}/deliveries/{delivery.id}/redeliver",
                    headers=tenant.auth)
    assert r.status_code == 409 and "disabled" in r.json()["detail"]
    with session_scope() as db:  # a disabled endpoint gets no new deliveries
        emit_event(db, tenant.org_id, "job.started", {"job": {"id": "y"}})
        assert db.query(WebhookDelivery).filter_by(endpoint_id=hook_id).count() == 1
