"""`GET /v1/audit-events`: filters, pagination, tenancy and scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.conftest import Tenant, login, make_tenant


def _actions(client: TestClient, tenant: Tenant, query: str) -> list[str]:
    r = client.get(f"/v1/audit-events?{query}", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def test_filters_and_pagination(client: TestClient, tenant: Tenant,
                                other_tenant: Tenant) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [client.post("/v1/webhooks", json={"url": f"http://h{i}.example"},
                       headers=tenant.auth).json()["id"] for i in range(3)]
    client.delete(f"/v1/webhooks/{ids[0]}", headers=tenant.auth)
    csrf = login(client, tenant.email, tenant.password)  # a user action, via the session
    r = client.patch(f"/v1/webhooks/{ids[1]}", json={"active": False},
                     headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    client.post("/v1/webhooks", json={"url": "http://x.example"}, headers=other_tenant.auth)

    everything = client.get("/v1/audit-events?order=asc", headers=tenant.auth).json()["items"]
    assert [e["action"] for e in everything] == [
        "webhook.create", "webhook.create", "webhook.create", "webhook.delete", "auth.login",
        "webhook.update"]
    create = everything[0]
    assert create["actor_type"] == "api_key" and create["actor_id"] == tenant.api_key_id
    assert create["details"]["actor"] == "api_key:test" and create["ip"]
    assert create["user_agent"] == "testclient"
    update = everything[-1]
    assert update["actor_type"] == "user" and update["details"]["actor"] == f"user:{tenant.email}"

    assert _actions(client, tenant, "action=webhook.create") == ["webhook.create"] * 3
    assert _actions(client, tenant, "action=webhook.*&actor_type=user") == ["webhook.update"]
    assert _actions(client, tenant, f"target_type=webhook&target_id={ids[0]}") == [
        "webhook.delete", "webhook.create"]
    assert _actions(client, tenant, f"actor_id={tenant.api_key_id}&action=webhook.delete") == [
        "webhook.delete"]
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert _actions(client, tenant, f"since={future.replace('+00:00', 'Z')}") == []
    past = before.replace(tzinfo=None).isoformat()  # no offset: read as UTC
    assert len(_actions(client, tenant, f"since={past}")) == 6
    assert _actions(client, tenant, f"until={past}") == []

    page1 = client.get("/v1/audit-events?limit=4", headers=tenant.auth).json()
    page2 = client.get(f"/v1/audit-events?limit=4&cursor={page1['next_cursor']}",
                       headers=tenant.auth).json()
    assert len(page1["items"]) == 4 and len(page2["items"]) == 2 and page2["next_cursor"] is None
    assert [e["id"] for e in page1["items"] + page2["items"]] == [
        e["id"] for e in reversed(everything)]


def test_bad_filters_and_scope(client: TestClient, tenant: Tenant) -> None:
    for query in ("actor_type=robot", "since=yesterday", "limit=500", "cursor=nope",
                  "action=%00", "target_id=a%00"):
        r = client.get(f"/v1/audit-events?{query}", headers=tenant.auth)
        assert r.status_code == 422, (query, r.text)
    reader = make_tenant(scopes=["datasets:read", "jobs:read", "models:read"])
    assert client.get("/v1/audit-events", headers=reader.auth).status_code == 403
    assert client.get("/v1/audit-events").status_code == 401
