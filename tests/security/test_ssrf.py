"""Webhook SSRF through the API: internal URLs are refused when created or updated; a name that
only resolution reveals as internal fails its delivery before any connection; and a tenant never
reads a receiver's answer body.

Real PostgreSQL, real listeners on 127.0.0.1 that count connections, the real delivery code
(``attempt``, what the Celery task runs); only the broker hop is skipped (see ``sent``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.core.settings import get_settings
from app.integrations import webhooks
from app.integrations.delivery import attempt
from app.models import WebhookDelivery, WebhookEndpoint
from tests.conftest import Tenant
from tests.security.egress_listeners import http_answer, listening, loopback_name

REDIS_PORT, PG_PORT = 6379, 5432


def spellings(port: int) -> list[str]:
    return [f"http://{host}:{port}/hook" for host in (
        "127.0.0.1", "localhost", "[::1]", "0.0.0.0", "2130706433", "0x7f000001", "127.1",
        "[::ffff:127.0.0.1]", "0177.0.0.1", "localhost.", "[fe80::1]")] + [
        "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://100.64.0.1/",
        f"http://127.0.0.1:{REDIS_PORT}/", f"http://127.0.0.1:{PG_PORT}/",
        f"https://2130706433:{REDIS_PORT}/", f"http://[::ffff:7f00:1]:{PG_PORT}/"]


@pytest.fixture()
def allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """ATELIER_EGRESS_ALLOW for this test: empty (the production default) unless set."""
    def set_allow(value: str) -> None:
        monkeypatch.setenv("ATELIER_EGRESS_ALLOW", value)
        get_settings.cache_clear()

    set_allow("")
    yield set_allow
    get_settings.cache_clear()


@pytest.fixture()
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Delivery ids handed to the broker; the test runs each attempt itself, in process."""
    ids: list[str] = []
    monkeypatch.setattr(webhooks, "send", ids.extend)
    return ids


@contextmanager
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """Every TCP connection the delivery code opens (it goes through create_connection)."""
    seen: list[tuple[Any, ...]] = []
    real = socket.create_connection

    def spy(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(tuple(address))
        return real(address, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(socket, "create_connection", spy)
        yield seen


def _deliver(client: TestClient, tenant: Tenant, hook_id: str, sent: list[str]) -> dict:
    with session_scope() as db:
        webhooks.emit_event(db, tenant.org_id, "job.failed", {"job": {"id": "j"}})
    delivery_id = sent.pop()
    attempt(delivery_id)
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries/{delivery_id}", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _hook(client: TestClient, tenant: Tenant, url: str) -> str:
    r = client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]},
                    headers=tenant.auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_internal_urls_are_refused_on_create_and_update(
    client: TestClient, tenant: Tenant, allow: Any,
) -> None:
    with listening("127.0.0.1") as target:
        hook_id = _hook(client, tenant, "https://hooks.example.com/atelier")
        for url in spellings(target.port):
            r = client.post("/v1/webhooks", json={"url": url}, headers=tenant.auth)
            assert r.status_code == 422, (url, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            [error] = [e for e in r.json()["errors"] if e["loc"] == ["body", "url"]]
            assert "refused" in error["msg"], (url, error)
            r = client.patch(f"/v1/webhooks/{hook_id}", json={"url": url}, headers=tenant.auth)
            assert r.status_code == 422, (url, r.text)
    assert target.accepted == 0
    hooks = client.get("/v1/webhooks", headers=tenant.auth).json()["items"]
    assert [h["url"] for h in hooks] == ["https://hooks.example.com/atelier"]


def test_a_name_that_resolves_to_loopback_fails_delivery_without_connecting(
    client: TestClient, tenant: Tenant, allow: Any, sent: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = loopback_name()  # e.g. this machine's name from /etc/hosts
    with listening("127.0.0.1") as target, connects(monkeypatch) as opened:
        for port in (target.port, REDIS_PORT, PG_PORT):
            hook_id = _hook(client, tenant, f"http://{name}:{port}/hook")  # accepted: a name
            d = _deliver(client, tenant, hook_id, sent)
            assert d["last_error"] == "refused: resolves to a non-public address", d
            assert d["response_code"] is None and d["attempts"] == 1
            assert d["status"] == "pending"  # retried later; DNS may change, it is checked again
            client.delete(f"/v1/webhooks/{hook_id}", headers=tenant.auth)
    assert opened == [] and target.accepted == 0


def test_stored_internal_urls_are_refused_before_connecting(
    client: TestClient, tenant: Tenant, allow: Any, sent: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Endpoints stored before the guard existed (or under a wider allow-list) are checked
    again at every delivery."""
    with listening("127.0.0.1") as target:
        urls = [target.url(), f"http://2130706433:{target.port}/",
                f"http://[::ffff:127.0.0.1]:{target.port}/", f"http://127.0.0.1:{REDIS_PORT}/",
                f"http://0.0.0.0:{PG_PORT}/", "http://169.254.169.254/latest/meta-data/"]
        with session_scope() as db:
            rows = [WebhookEndpoint(org_id=tenant.org_id, url=url, events=["job.failed"],
                                    description="", active=True, secret="whsec_x")
                    for url in urls]
            db.add_all(rows)
            db.flush()
            hook_ids = [row.id for row in rows]
        with session_scope() as db:
            webhooks.emit_event(db, tenant.org_id, "job.failed", {"job": {"id": "j"}})
        assert len(sent) == len(urls)
        with connects(monkeypatch) as opened:
            for delivery_id in sent:
                attempt(delivery_id)
    assert opened == [] and target.accepted == 0
    for hook_id in hook_ids:
        r = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=tenant.auth)
        [d] = r.json()["items"]
        assert d["last_error"] == "refused: non-public address" and d["response_code"] is None


def test_tenants_read_a_status_never_the_answer_body(
    client: TestClient, tenant: Tenant, allow: Any, sent: list[str],
) -> None:
    allow("127.0.0.1/32")
    secret = b"redis_version:7.2 internal-only /etc/passwd root:x:0:0"
    with listening("127.0.0.1", answer=http_answer(500, secret)) as target:
        hook_id = _hook(client, tenant, target.url())
        d = _deliver(client, tenant, hook_id, sent)
    assert target.accepted == 1  # the allow-list let this one through
    assert d["response_code"] == 500 and d["last_error"] == "HTTP 500"
    listed = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=tenant.auth).text
    assert "internal-only" not in listed and "redis_version" not in listed

    with socket.socket() as s:  # nothing listens here once closed
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    d = _deliver(client, tenant, _hook(client, tenant, f"http://127.0.0.1:{closed}/"), sent)
    assert d["last_error"] == "connection refused" and d["response_code"] is None


def test_bodies_stored_before_the_guard_are_not_shown(
    client: TestClient, tenant: Tenant, allow: Any,
) -> None:
    hook_id = _hook(client, tenant, "https://hooks.example.com/old")
    with session_scope() as db:
        old = [WebhookDelivery(org_id=tenant.org_id, endpoint_id=hook_id, event="job.failed",
                               payload={}, status="failed", attempts=8, response_code=code,
                               last_error=text)
               for code, text in ((500, "HTTP 500: <html>nginx at 10.0.0.5</html>"),
                                  (None, "ConnectError: [Errno 111] Connection refused"))]
        db.add_all(old)
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=tenant.auth)
    assert sorted(d["last_error"] for d in r.json()["items"]) == ["HTTP 500", "delivery failed"]
