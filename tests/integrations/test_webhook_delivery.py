"""Deliveries through a real Celery worker to a loopback receiver: signed, retried, recorded."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.integrations.signing import verify
from app.integrations.webhooks import emit_event
from tests.conftest import Tenant
from tests.integrations.conftest import Receiver, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("webhook_worker")]


def _hook(client: TestClient, tenant: Tenant, url: str, events: list[str]) -> dict:
    r = client.post("/v1/webhooks", json={"url": url, "events": events}, headers=tenant.auth)
    assert r.status_code == 201, r.text
    return r.json()


def _deliveries(client: TestClient, tenant: Tenant, hook_id: str) -> list[dict]:
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _settled(client: TestClient, tenant: Tenant, hook_id: str, n: int) -> list[dict] | None:
    items = _deliveries(client, tenant, hook_id)
    done = [d for d in items if d["status"] != "pending"]
    return items if len(items) == n and len(done) == n else None


def test_signed_delivery_is_retried_after_500_and_redeliverable(
    client: TestClient, tenant: Tenant, receiver: Receiver,
) -> None:
    path = f"/fail/1/{tenant.org_id}"
    hook = _hook(client, tenant, receiver.base_url + path, ["job.succeeded"])
    started = time.monotonic()
    with session_scope() as db:
        emit_event(db, tenant.org_id, "job.succeeded", {"job": {"id": "j1", "status": "ok"}})
        emit_event(db, tenant.org_id, "job.failed", {"job": {"id": "j1"}})  # not subscribed
    assert time.monotonic() - started < 1.0  # emitting only records and queues

    [d] = wait_for(lambda: _settled(client, tenant, hook["id"], 1), what="delivery")
    assert d["status"] == "succeeded" and d["attempts"] == 2 and d["response_code"] == 200
    assert d["last_error"] is None and d["delivered_at"] and d["webhook_id"] == hook["id"]

    first, second = receiver.to(path)
    assert receiver.seen[path] == 2  # 500 then 200
    for req in (first, second):
        assert verify(hook["secret"], req.headers["Atelier-Signature"], req.body)
        assert not verify(hook["secret"], req.headers["Atelier-Signature"], req.body + b" ")
        assert not verify("whsec_wrong", req.headers["Atelier-Signature"], req.body)
        assert req.headers["Atelier-Event"] == "job.succeeded"
        assert req.headers["Atelier-Delivery"] == d["id"]
    body = json.loads(second.body)
    assert body["type"] == "job.succeeded" and body["data"] == {"job": {"id": "j1", "status": "ok"}}
    assert body["org_id"] == tenant.org_id and body == d["payload"]

    r = client.post(f"/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver",
                    headers=tenant.auth)
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["id"] != d["id"] and again["status"] == "pending"
    items = wait_for(lambda: _settled(client, tenant, hook["id"], 2), what="redelivery")
    assert {i["id"]: i["status"] for i in items} == {d["id"]: "succeeded",
                                                     again["id"]: "succeeded"}
    third = receiver.to(path)[2]
    assert third.headers["Atelier-Delivery"] == again["id"]
    assert json.loads(third.body)["id"] == body["id"]  # same event id: receivers can dedupe
    assert verify(hook["secret"], third.headers["Atelier-Signature"], third.body)

    r = client.get("/v1/audit-events?action=webhook.redeliver", headers=tenant.auth)
    assert [e["target_id"] for e in r.json()["items"]] == [again["id"]]


def test_gives_up_after_max_attempts_and_records_each(
    client: TestClient, tenant: Tenant, receiver: Receiver,
) -> None:
    path = f"/fail/99/{tenant.org_id}"
    hook = _hook(client, tenant, receiver.base_url + path, ["job.failed", "job.cancelled"])
    other = _hook(client, tenant, receiver.base_url + f"/ok/{tenant.org_id}", ["job.started"])
    with session_scope() as db:
        emit_event(db, tenant.org_id, "job.failed", {"job": {"id": "j2", "error": "boom"}})
    [d] = wait_for(lambda: _settled(client, tenant, hook["id"], 1), what="give up")
    assert d["status"] == "failed" and d["attempts"] == 3  # WORKER_ENV max attempts
    assert d["response_code"] == 500 and d["last_error"] == "HTTP 500"  # no body
    assert receiver.seen[path] == 3
    assert _deliveries(client, tenant, other["id"]) == []  # not subscribed to job.failed

    r = client.get(f"/v1/webhooks/{hook['id']}/deliveries?status=failed", headers=tenant.auth)
    assert [i["id"] for i in r.json()["items"]] == [d["id"]]


def test_unreachable_receiver_records_the_error(
    client: TestClient, tenant: Tenant,
) -> None:
    hook = _hook(client, tenant, "http://127.0.0.1:9/closed", ["job.started"])
    with session_scope() as db:
        emit_event(db, tenant.org_id, "job.started", {"job": {"id": "j3"}})
    [d] = wait_for(lambda: _settled(client, tenant, hook["id"], 1), what="connection errors")
    assert d["status"] == "failed" and d["attempts"] == 3 and d["response_code"] is None
    assert d["last_error"] == "connection refused"
