from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.processes import free_port


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}
    assert 'atelier_dependency_up{dependency="broker"} 1.0' in client.get("/metrics").text


def test_readyz_hides_which_address_is_down(client: TestClient, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from worker.celery_app import celery_app

    closed = free_port()  # nothing listens here
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed}/0")
    with caplog.at_level(logging.WARNING, logger="atelier.health"):
        r = client.get("/readyz")
    assert r.status_code == 503
    # The public answer names no dependency, host or port; the operator's log and metrics do.
    assert r.json() == {"status": "not ready"}
    assert str(closed) not in r.text and "127.0.0.1" not in r.text
    assert any("broker" in rec.getMessage() for rec in caplog.records)
    metrics = client.get("/metrics").text
    assert 'atelier_dependency_up{dependency="broker"} 0.0' in metrics
    assert 'atelier_dependency_up{dependency="database"} 1.0' in metrics


def test_prometheus_metrics_by_route(client: TestClient, tenant: Tenant) -> None:
    client.get("/v1/me", headers=tenant.auth)
    text = client.get("/metrics").text
    assert 'atelier_http_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert "atelier_http_request_duration_seconds_bucket" in text
