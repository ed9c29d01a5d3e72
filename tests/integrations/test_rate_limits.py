"""Rate limits per key and per org, on Redis and in-process: 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.core.settings import get_settings
from app.identity import service
from app.integrations import ratelimit
from tests.conftest import Tenant


@pytest.fixture(params=["redis", "memory"])
def limits(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
           service_env: dict[str, str]) -> Iterator[str]:
    # Hour windows: a window boundary falling inside a test is then very unlikely.
    monkeypatch.setenv("ATELIER_RATE_LIMIT_BACKEND", request.param)
    monkeypatch.setenv("ATELIER_RATE_LIMIT_PER_KEY", "3/hour")
    monkeypatch.setenv("ATELIER_RATE_LIMIT_PER_ORG", "5/hour")
    get_settings.cache_clear()
    ratelimit.reset()
    yield request.param
    monkeypatch.undo()
    get_settings.cache_clear()


def _second_key(tenant: Tenant) -> dict[str, str]:
    with session_scope() as db:
        _, key = service.create_api_key(db, tenant.org_id, "second", ["jobs:read"])
    return {"Authorization": f"Bearer {key}"}


def test_per_key_then_per_org(limits: str, client: TestClient, tenant: Tenant,
                              other_tenant: Tenant) -> None:
    for _ in range(3):
        assert client.get("/v1/usage", headers=tenant.auth).status_code == 200
    r = client.get("/v1/usage", headers=tenant.auth)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    assert r.json()["title"] == "Too many requests" and r.json()["limit"] == "per_key"
    assert "3 requests per 3600 s per key" in r.json()["detail"]

    second = _second_key(tenant)  # another key of the same org has its own budget...
    assert client.get("/v1/usage", headers=second).status_code == 200
    assert client.get("/v1/usage", headers=second).status_code == 200
    r = client.get("/v1/usage", headers=second)  # ...but the org's 5 are spent
    assert r.status_code == 429 and r.json()["limit"] == "per_org"
    assert "retry-after" in r.headers

    assert client.get("/v1/usage", headers=other_tenant.auth).status_code == 200
    assert client.get("/healthz", headers=tenant.auth).status_code == 200  # never limited
    bad = {"Authorization": "Bearer atl_000000000000_nope"}
    assert client.get("/v1/usage", headers=bad).status_code == 401  # strangers aren't counted


def test_sessions_are_limited_per_user(limits: str, client: TestClient, tenant: Tenant) -> None:
    from tests.conftest import login

    login(client, tenant.email, tenant.password)
    codes = [client.get("/v1/usage").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_redis_outage_counts_in_process(monkeypatch: pytest.MonkeyPatch, client: TestClient,
                                        tenant: Tenant) -> None:
    """No 5xx when Redis is down, and no unlimited requests either: the replica counts."""
    monkeypatch.setenv("ATELIER_RATE_LIMIT_PER_KEY", "1/hour")
    monkeypatch.setenv("ATELIER_RATE_LIMIT_BACKEND", "redis")
    monkeypatch.setenv("ATELIER_REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    get_settings.cache_clear()
    try:
        codes = [client.get("/v1/usage", headers=tenant.auth).status_code for _ in range(3)]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        ratelimit.reset()
    assert codes == [200, 429, 429]


def test_parse_limit() -> None:
    assert ratelimit.parse_limit("600/minute") == ratelimit.Limit(600, 60)
    assert ratelimit.parse_limit("10/s") == ratelimit.Limit(10, 1)
    assert ratelimit.parse_limit("5") == ratelimit.Limit(5, 60)
    assert ratelimit.parse_limit("off") is None
    with pytest.raises(ValueError):
        ratelimit.parse_limit("lots/minute")
