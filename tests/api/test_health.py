from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def test_healthz_and_readyz_name_each_dependency(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_readyz_reports_a_dead_broker(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from worker.celery_app import celery_app

    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["broker"].startswith("error")
    assert r.json()["checks"]["database"] == "ok"


def test_prometheus_metrics_by_route(client: TestClient, tenant: Tenant) -> None:
    client.get("/v1/me", headers=tenant.auth)
    text = client.get("/metrics").text
    assert 'atelier_http_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert "atelier_http_request_duration_seconds_bucket" in text
